"""A stored config read back as it is: ``config.yaml`` of a run folder, the config inside a checkpoint.

A stored config is the output of :func:`~insvp_cli.resolve.layers.resolve_config`: every layer (recipes, a
published protocol, dataset defaults, the data's requirements) was applied once, when the run was created. Read
back, it is only validated into :class:`~insvp_cli.config.schema.Config`; applying a layer again would change what
the run was (a published protocol's batch size replacing the one the user set). The ``--set`` values of a resumed
run or of a command that reads a checkpoint apply key by key on top (:func:`with_overrides`), nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..common.errors import ConfigError
from ..config.coerce import build_dataclass
from ..config.overrides import merge, overrides_tree
from ..config.schema import DEFAULT_METHOD, Config
from ..methods import METHODS


def config_from_tree(tree: Any, source: str) -> Config:
    """Validate a stored config tree as it is into a :class:`Config`.

    Args:
        tree: the mapping that ``Config.to_dict`` wrote (a run's ``config.yaml``, a checkpoint's ``config``).
        source: where it comes from, for messages (``runs/x/config.yaml``).

    Raises:
        ConfigError: not a mapping of groups, an unknown method, an unknown key or a value out of its range, named
            with ``source``.
    """
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{source}: not a stored config (expected a mapping of backbone, data, method, train)")
    method = tree.get("method", {})
    if not isinstance(method, Mapping):
        raise ConfigError(f"{source}: method: expected a mapping, e.g. method: {{name: insvp}}")
    name = method.get("name", DEFAULT_METHOD)
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError(f"{source}: method.name: unknown method {name!r}; valid: {', '.join(METHODS.names())}")
    try:
        method_cfg = build_dataclass(METHODS.get(name).config_cls, dict(method), "method")
        return build_dataclass(Config, {**tree, "method": method_cfg}, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def with_overrides(cfg: Config, overrides: Sequence[str], source: str) -> Config:
    """``cfg`` with ``--set KEY=VALUE`` values applied key by key, then validated again; nothing else changes.

    A stored config's method is the model's: ``method.name`` cannot change here.

    Raises:
        ConfigError: a bad ``--set``, a value out of range, or another ``method.name``.
    """
    if not overrides:
        return cfg
    tree = overrides_tree(overrides)
    method = tree.get("method")
    if isinstance(method, dict) and method.get("name", cfg.method.name) != cfg.method.name:
        raise ConfigError(f"method.name cannot change in a resumed run or a trained checkpoint: {source} holds a "
                          f"{cfg.method.name} model; train a new run for {method['name']}")
    return config_from_tree(merge(cfg.to_dict(), tree), source)
