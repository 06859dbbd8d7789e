"""Recipes: YAML files of config deltas, shipped with the package (``insvp_cli/recipes/``, which a checkout's
``recipes/`` points to) or anywhere on disk; ``--recipe svhn`` or ``--recipe vtab/dtd`` names a shipped one.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..common.errors import ConfigError, UsageError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


Recipe = str | Path | dict[str, Any]


# a recipe's search space for `insvp sweep` (read by insvp_cli.experiments.sweep); it is not part of a run's config
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


def recipe_list(recipe: Recipe | Sequence[Recipe] | None) -> list[Recipe]:
    """``None``, one recipe or several, as a list."""
    if recipe is None:
        return []
    return [recipe] if isinstance(recipe, (str, Path, dict)) else list(recipe)
