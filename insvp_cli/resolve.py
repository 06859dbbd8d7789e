"""THE resolver: dataclass defaults < recipes (in order) < ``--set a.b=value`` overrides -> a validated Config.

It sits above the config dataclasses (:mod:`insvp_cli.config`) and the method registry
(:mod:`insvp_cli.methods`) and imports neither torch nor a method's model. Recipes shipped with the
package live in ``insvp_cli/recipes/`` (the checkout's ``recipes/`` points there); ``--recipe svhn`` or
``--recipe vtab/dtd`` names one of them, a path names any file.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .config import DEFAULT_METHOD, Config, DataConfig, build_dataclass
from .errors import ConfigError, UsageError
from .methods import METHODS
from .requirements import bind_requirements

RECIPES = Path(__file__).resolve().parent / "recipes"

Recipe = str | Path | dict[str, Any]
# a recipe's search space for `insvp sweep` (read by insvp_cli.sweep); it is not part of a run's config
SWEEP_KEY = "sweep"


def shipped_recipes() -> list[str]:
    """Names of the recipes shipped with the package (``svhn``, ``vtab/dtd``, ...), sorted."""
    return sorted(p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.yaml"))


def find_recipe(recipe: str | Path) -> Path:
    """A recipe file: an existing path as given, else a shipped recipe by name (``svhn``, ``vtab/dtd.yaml``).

    Raises:
        UsageError: neither exists; the message lists close shipped names.
    """
    path = Path(recipe).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise UsageError(f"recipe {path} is a folder; give a YAML file or a shipped recipe name")
    name = path.as_posix().removesuffix(".yaml").removeprefix("recipes/")
    shipped = RECIPES / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    close = difflib.get_close_matches(name, shipped_recipes(), n=4, cutoff=0.5)
    hint = f"; close shipped recipes: {', '.join(close)}" if close else "; `insvp recipes` lists the shipped ones"
    raise UsageError(f"recipe {recipe} does not exist (neither a file nor a shipped recipe name){hint}")


def load_recipe(recipe: str | Path) -> dict[str, Any]:
    """Read a recipe YAML file (a path or a shipped name) into a mapping (an empty file is an empty recipe)."""
    path = find_recipe(recipe)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"recipe {path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path}: the top level must be a mapping of groups (backbone, data, method, train)")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into a key path and a YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. train.lr=0.001")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.problem})") from None
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
    """``--set`` strings as one nested mapping (later strings win)."""
    tree: dict[str, Any] = {}
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for i, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(keys[: i + 1])} is a value, not a group")
            node = child
        node[keys[-1]] = value
    return tree


def recipe_list(recipe: Recipe | Sequence[Recipe] | None) -> list[Recipe]:
    """``None``, one recipe or several, as a list."""
    if recipe is None:
        return []
    return [recipe] if isinstance(recipe, (str, Path, dict)) else list(recipe)


def resolve_config(recipe: Recipe | Sequence[Recipe] | None = None, overrides: Sequence[str] = (), *,
                   bind: bool = False) -> Config:
    """Defaults < recipes (paths, shipped names or mappings, in order) < ``--set`` overrides.

    Later recipes override earlier ones key by key (``insvp train --recipe R --recipe best.yaml``). The
    ``method`` group follows the method finally selected (the last ``method.name`` of the recipes and
    ``--set``): a recipe's ``method`` keys apply only when they were written for that method B (its ``name``;
    a group without a ``name`` belongs to the method selected before it, the first recipe's to the default
    method), so ``--set method.name=B`` on a recipe written for method A drops A's hyper-parameters. B starts
    from its own defaults, then what its authors published for the run's dataset
    (:meth:`~insvp_cli.config.MethodConfig.dataset_defaults`), then its published protocol's method keys (with
    ``method.protocol: published``), then the recipes' optional per-method deltas ``methods: {B: {...}}``. A
    published protocol's ``train`` and ``data`` keys replace the recipes' (:mod:`insvp_cli.protocol`); ``--set``
    wins over everything. A ``sweep`` section (the search space of ``insvp sweep``) is not part of the run's
    config and is left out.

    Args:
        recipe: a recipe (path of a YAML file, shipped recipe name, or an already-loaded mapping, e.g. from
            a checkpoint), a list of them (later ones win), or None.
        overrides: ``a.b=value`` strings; values are parsed as YAML (``true``, ``0.1``, ``[7, 9, 3]``).
        bind: also fill in the values that follow from the data the run will read
            (:func:`~insvp_cli.requirements.bind_requirements`: TransHP's coarse classes from the hierarchy file),
            as a run folder stores its config; this reads the data's hierarchy, so a config rebuilt from a
            checkpoint, or planned without its data, is resolved without it.

    Returns:
        The validated :class:`~insvp_cli.config.Config`.

    Raises:
        MissingNeed: with ``bind``, the method needs something the data does not provide.
    """
    layers = [_copy(r) if isinstance(r, dict) else load_recipe(r) for r in recipe_list(recipe)]
    override_tree = overrides_tree(overrides)

    tree: dict[str, Any] = {}
    per_method: dict[str, dict[str, Any]] = {}
    groups: list[tuple[str, dict[str, Any]]] = []  # each recipe's method group and the method it was written for
    name = DEFAULT_METHOD
    for layer in layers:
        layer.pop(SWEEP_KEY, None)
        deltas = layer.pop("methods", None) or {}
        if not isinstance(deltas, dict) or any(not isinstance(v, dict) for v in deltas.values()):
            raise ConfigError("methods: expected a mapping of method name -> its hyper-parameters")
        for other, delta in deltas.items():
            per_method[other] = {**per_method.get(other, {}), **delta}
        group = _group(layer, "method")
        layer.pop("method", None)
        name = group.get("name", name)
        groups.append((name, group))
        tree = _merge(tree, layer)
    override_method = _group(override_tree, "method")
    override_tree.pop("method", None)
    name = override_method.get("name", name)
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError(f"method.name: unknown method {name!r}; valid: {', '.join(METHODS.names())}")
    for other, delta in per_method.items():  # typos in deltas of unselected methods are errors too
        if other not in METHODS:
            raise ConfigError(f"methods.{other}: unknown method; valid: {', '.join(METHODS.names())}")
        build_dataclass(METHODS.get(other).config_cls, {**delta, "name": other}, f"methods.{other}")
    config_cls = METHODS.get(name).config_cls
    # keys written for another method do not apply
    method_layers = [per_method.get(name, {}), *(group for written_for, group in groups if written_for == name),
                     override_method]
    protocol = next((layer["protocol"] for layer in reversed(method_layers) if "protocol" in layer), None)
    published = config_cls.published if protocol == "published" else None
    if published is not None:  # its train and data keys replace the recipes'; --set still wins
        tree = _merge(tree, {"train": dict(published.train), "data": dict(published.data)})
    tree = _merge(tree, override_tree)
    method_tree = {**config_cls.dataset_defaults(build_dataclass(DataConfig, tree.get("data", {}), "data")),
                   **(published.method if published is not None else {})}
    for layer in method_layers:
        method_tree.update(layer)
    method_tree["name"] = name
    tree["method"] = build_dataclass(config_cls, method_tree, "method")
    cfg = build_dataclass(Config, tree, "")
    return bind_requirements(cfg) if bind else cfg


def _group(tree: dict[str, Any], key: str) -> dict[str, Any]:
    group = tree.get(key, {})
    if not isinstance(group, dict):
        raise ConfigError(f"{key}: expected a mapping, e.g. {key}: {{name: insvp}}")
    return group


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, dict) else v for k, v in tree.items()}
