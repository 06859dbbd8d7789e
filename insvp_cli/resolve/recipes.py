"""Recipes: YAML files of config deltas, shipped with the package (``insvp_cli/recipes/``, which a checkout's
``recipes/`` points to) or anywhere on disk; ``--recipe svhn`` or ``--recipe vtab/dtd`` names a shipped one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common.errors import ConfigError, UsageError
from ..common.yamlio import read_yaml

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


Recipe = str | Path | dict[str, Any]


# a recipe's search space for `insvp sweep` (read by insvp_cli.experiments.sweep); it is not part of a run's config
SWEEP_KEY = "sweep"


def shipped_recipes() -> list[str]:
    """Names of the recipes shipped with the package (``svhn``, ``vtab/dtd``, ...), sorted."""
    return sorted(p.relative_to(RECIPES).with_suffix("").as_posix() for p in RECIPES.rglob("*.yaml"))


def find_recipe(recipe: str | Path) -> Path:
    """A recipe file: an existing file as given, else a shipped recipe by name (``svhn``, ``vtab/dtd.yaml``).

    A folder is never a recipe, so a shipped name wins over a folder of the same name (the natural place of the
    data of ``--recipe vtab/dtd`` is a folder ``vtab/dtd``).

    Raises:
        UsageError: an empty name, a path that is not a regular file (a folder, a device), or neither a file nor a
            shipped name; the message lists close shipped names.
    """
    if not str(recipe).strip():
        raise UsageError("--recipe '': empty; give a shipped recipe name (`insvp recipes` lists them) or a YAML file")
    path = Path(recipe).expanduser()
    if path.is_file():
        return path
    name = path.as_posix().removesuffix(".yaml").removeprefix("recipes/")
    shipped = RECIPES / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    if path.exists():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise UsageError(f"recipe {path} is {kind} and no shipped recipe has that name; give a YAML file or a "
                         "shipped recipe name (`insvp recipes` lists them)")
    close = difflib.get_close_matches(name, shipped_recipes(), n=4, cutoff=0.5)
    hint = f"; close shipped recipes: {', '.join(close)}" if close else "; `insvp recipes` lists the shipped ones"
    raise UsageError(f"recipe {recipe} does not exist (neither a file nor a shipped recipe name){hint}")


def load_recipe(recipe: str | Path) -> dict[str, Any]:
    """Read a recipe YAML file (a path or a shipped name) into a mapping (an empty file is an empty recipe).

    Raises:
        UsageError: no such recipe, an unreadable file; ConfigError: not valid YAML, a duplicate key
            (``FILE:LINE:COL: problem``), or a top level that is not a mapping.
    """
    path = find_recipe(recipe)
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path}: the top level must be a mapping of groups (backbone, data, method, train)")
    return data


def recipe_list(recipe: Recipe | Sequence[Recipe] | None) -> list[Recipe]:
    """``None``, one recipe or several, as a list."""
    if recipe is None:
        return []
    return [recipe] if isinstance(recipe, (str, Path, dict)) else list(recipe)
