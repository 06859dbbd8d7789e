"""THE resolver: dataclass defaults < recipes (in order) < ``--set a.b=value`` overrides -> a validated Config.

Every layer that makes a run's config is applied here, once, when the run is created (or planned): recipes, a
method's dataset defaults and published protocol, ``--set``, and the values that follow from the data. A stored
config (a run's ``config.yaml``, a checkpoint's) never comes back here: :mod:`.stored` reads it as it is.

It sits above the config dataclasses (:mod:`insvp_cli.config.schema`) and the method registry
(:mod:`insvp_cli.methods`) and imports neither torch nor a method's model. Recipes shipped with the
package live in ``insvp_cli/recipes/`` (the checkout's ``recipes/`` points there); ``--recipe svhn`` or
``--recipe vtab/dtd`` names one of them, a path names any file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..common.errors import ConfigError
from ..config.coerce import build_dataclass
from ..config.overrides import copy_tree, merge, overrides_tree
from ..config.schema import DEFAULT_METHOD, Config, DataConfig
from ..methods import METHODS
from .needs import bind_requirements
from .recipes import SWEEP_KEY, Recipe, load_recipe, recipe_list


def resolve_config(recipe: Recipe | Sequence[Recipe] | None = None, overrides: Sequence[str] = (), *,
                   bind: bool = True) -> Config:
    """Defaults < recipes (paths, shipped names or mappings, in order) < ``--set`` overrides.

    Later recipes override earlier ones key by key (``insvp train --recipe R --recipe best.yaml``). The
    ``method`` group follows the method finally selected (the last ``method.name`` of the recipes and
    ``--set``): a recipe's ``method`` keys apply only when they were written for that method B (its ``name``;
    a group without a ``name`` belongs to the method selected before it, the first recipe's to the default
    method), so ``--set method.name=B`` on a recipe written for method A drops A's hyper-parameters. B starts
    from its own defaults, then what its authors published for the run's dataset
    (:meth:`~insvp_cli.config.schema.MethodConfig.dataset_defaults`), then its published protocol's method keys
    (with ``method.protocol: published``), then the recipes' optional per-method deltas ``methods: {B: {...}}``. A
    published protocol's ``train`` and ``data`` keys replace the recipes' (:mod:`insvp_cli.config.protocols`);
    ``--set`` wins over everything. A ``sweep`` section (the search space of ``insvp sweep``) is not part of the
    run's config and is left out.

    Args:
        recipe: a recipe (path of a YAML file, shipped recipe name, or an already-loaded mapping of recipe keys),
            a list of them (later ones win), or None.
        overrides: ``a.b=value`` strings; values are parsed as YAML (``true``, ``0.1``, ``[7, 9, 3]``).
        bind: fill in the values that follow from the data the run will read
            (:func:`~insvp_cli.resolve.needs.bind_requirements`: TransHP's coarse classes from the hierarchy file),
            as a run folder stores its config. This reads the data's hierarchy; ``False`` for a config planned
            without its data (checking values, listing runs).

    Returns:
        The validated :class:`~insvp_cli.config.schema.Config`.

    Raises:
        MissingNeed: with ``bind``, the method needs something the data does not provide.
    """
    layers = [copy_tree(r) if isinstance(r, dict) else load_recipe(r) for r in recipe_list(recipe)]
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
        tree = merge(tree, layer)
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
        tree = merge(tree, {"train": dict(published.train), "data": dict(published.data)})
    tree = merge(tree, override_tree)
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
