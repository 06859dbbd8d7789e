"""Dotted keys of a config tree: ``--set a.b=value`` parsed and written back, trees flattened and merged.

No torch, no methods: the resolver (:mod:`insvp_cli.resolve.layers`), a stored config with a resume's
overrides (:mod:`insvp_cli.resolve.stored`) and the sweep's search space all speak in these keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from ..common.errors import ConfigError
from ..common.yamlio import safe_load


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into a key path and a YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. train.lr=0.001")
    try:
        value = safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return key.strip().split("."), value


def format_override(key: str, value: Any) -> str:
    """``key=value`` that :func:`parse_override` reads back as exactly ``value``.

    Strings stay as they are when YAML reads them back unchanged (paths read best unquoted); everything
    else is written by YAML itself, so ``1e-05`` becomes ``1.0e-05``, which YAML reads as a float again.
    """
    if isinstance(value, str) and value and yaml.safe_load(value) == value:
        return f"{key}={value}"
    text = yaml.safe_dump(value, default_flow_style=True, width=2**16).strip()
    return f"{key}={text.removesuffix('...').strip()}"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b": value}``; an empty mapping stays a value (``backbone.kwargs: {}``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def overrides_tree(overrides: Sequence[str]) -> dict[str, Any]:
    """``--set`` strings as one nested mapping: later strings win key by key, and a mapping value merges into the
    group it names (``--set train={}`` after ``--set train.epochs=1`` keeps ``epochs``), as a recipe's group merges
    into the defaults."""
    tree: dict[str, Any] = {}
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for i, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(keys[: i + 1])} is a value, not a group")
            node = child
        old = node.get(keys[-1])
        node[keys[-1]] = merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return tree


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base`` key by key: nested mappings merge, any other value replaces (neither is changed)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def copy_tree(tree: dict[str, Any]) -> dict[str, Any]:
    """A copy of a nested mapping whose mappings can be changed without touching ``tree``'s."""
    return {k: copy_tree(v) if isinstance(v, dict) else v for k, v in tree.items()}
