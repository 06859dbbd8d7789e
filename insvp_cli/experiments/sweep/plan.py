"""A planned sweep: recipes, ``--set``, the search space and the sampler, resolved and checked."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...common.errors import UsageError
from ...config.overrides import flatten, format_override, parse_override
from ...config.schema import Config
from ...data.registry import DATASETS
from ...resolve.layers import resolve_config
from ...resolve.recipes import Recipe, load_recipe, recipe_list
from ...runs.folder import LOCATION_KEYS
from ..queue import QueuedRun
from .space import Dimension, build_space, default_space, parse_grid, parse_range, section_space

SAMPLERS = ("grid", "tpe")
JOURNAL = "study.journal"
TRIALS = "trials"
FINAL = "final"
RESULT = "sweep.json"
# every trial: the test split is never evaluated during a search
TRIAL_OVERRIDES = ("train.test_every_epoch=false",)


@dataclass
class Sweep:
    """A sweep with everything resolved and checked; nothing opened or trained yet (see :func:`plan_sweep`).

    Attributes:
        out: the sweep folder.
        recipes: the loaded recipes, in order.
        recipe_names: where they came from, for messages and ``best.yaml``.
        overrides: the user's ``--set`` values (``method.name`` among them).
        space: the dimensions, sorted by key.
        sampler: ``grid`` or ``tpe``.
        trials: trials of a ``tpe`` study (``None`` for a grid: every point).
        prune: median pruning on the per-epoch validation accuracy.
        storage: an Optuna storage URL (``None``: the journal file in ``out``).
        study_name: the study's name in the storage.
        search_overrides: the dataset's search splits (VTAB-1k: ``data.vtab_protocol=tune``).
        final_overrides: the dataset's final run (VTAB-1k: ``data.vtab_protocol=final``); empty: none.
        base: the trials' config before the swept values.
        seeds: seeds per trial; its objective is the mean of their best validation accuracies (``--seeds N``).
    """

    out: Path
    recipes: list[dict[str, Any]]
    recipe_names: list[str]
    overrides: tuple[str, ...]
    space: tuple[Dimension, ...]
    sampler: str
    trials: int | None
    prune: bool
    storage: str | None
    study_name: str
    search_overrides: tuple[str, ...]
    final_overrides: tuple[str, ...]
    base: Config
    seeds: int = 1

    @property
    def size(self) -> int:
        """Trials of the whole study: every grid point, or ``trials``."""
        return math.prod(len(d.values) for d in self.space) if self.sampler == "grid" else int(self.trials)

    def param_overrides(self, params: dict[str, Any]) -> list[str]:
        return [format_override(key, params[key]) for key in sorted(params)]

    def trial_overrides(self, params: dict[str, Any]) -> list[str]:
        return [*self.overrides, *self.search_overrides, *TRIAL_OVERRIDES, *self.param_overrides(params)]

    def trial(self, params: dict[str, Any], run_name: str) -> QueuedRun:
        """A trial's run: the user's settings and ``params`` on the dataset's search splits, never tested, in
        ``trials/<run_name>`` (its other seeds: :meth:`~insvp_cli.experiments.queue.QueuedRun.seed`)."""
        return QueuedRun(resolve_config(self.recipes, self.trial_overrides(params)),
                         self.out / TRIALS / run_name)

    def final_run(self, params: dict[str, Any]) -> QueuedRun:
        """The final run: the user's settings and the chosen values on the dataset's final splits, in ``final``."""
        overrides = [*self.overrides, *self.param_overrides(params), *self.final_overrides]
        return QueuedRun(resolve_config(self.recipes, overrides), self.out / FINAL)

    def identity(self) -> dict[str, Any]:
        """What an existing study must have been made with: the search space, the sampler and the settings
        (but where the files are and how fast they are read: workers on several machines may differ there)."""
        settings = {k: v for k, v in flatten(self.base.to_dict()).items() if k not in LOCATION_KEYS}
        return json.loads(json.dumps({"space": [d.to_json() for d in self.space], "sampler": self.sampler,
                                      "settings": settings, **({"seeds": self.seeds} if self.seeds > 1 else {})}))

    def storage_label(self) -> str:
        return self.storage or str(self.out / JOURNAL)


def plan_sweep(recipes: Recipe | Sequence[Recipe] | None, overrides: Sequence[str], out: Path,
               grids: Sequence[str] = (), ranges: Sequence[str] = (), sampler: str = "grid",
               trials: int | None = None, prune: bool = False, storage: str | None = None,
               study: str | None = None, seeds: int = 1) -> Sweep:
    """Resolve and check a sweep: recipes, ``--set``, the search space, the sampler. Nothing is written.

    The search space of the selected method: the recipes' ``sweep:`` sections < ``--grid`` < ``--range`` (key by
    key); if none of them names a key, :func:`default_space`. With ``seeds`` above 1 every trial trains that many
    seeds (``trials/trial-NNNN``, ``trial-NNNN-seed1``, ...) and the selection is on their mean.

    Raises:
        UsageError: a bad recipe, override, grid, range or sampler setting (one line naming it).
    """
    if sampler not in SAMPLERS:
        raise UsageError(f"--sampler: {sampler!r} is not valid; valid: {', '.join(SAMPLERS)}")
    names = [str(r) if not isinstance(r, dict) else "MAPPING" for r in recipe_list(recipes)]
    trees = [r if isinstance(r, dict) else load_recipe(r) for r in recipe_list(recipes)]
    overrides = tuple(overrides)
    # the user's settings alone: errors name their key first; a need the data does not meet stops here too
    chosen = resolve_config(trees, overrides)
    dataset = DATASETS.get(chosen.data.name)
    raw = section_space(trees, chosen.method.name, names)
    raw.update(parse_grid(text) for text in grids)
    raw.update(parse_range(text) for text in ranges)
    if not raw:
        raw = default_space(chosen)
    fixed_sets = [*overrides, *dataset.search_overrides, *TRIAL_OVERRIDES]
    fixed = {".".join(parse_override(text)[0]) for text in fixed_sets}

    def check(key: str, value: Any) -> Config:
        return resolve_config(trees, [*fixed_sets, format_override(key, value)], bind=False)

    space = build_space(raw, check, sorted(fixed))
    if sampler == "grid":
        ranged = [d.key for d in space if not d.is_grid]
        if ranged:
            raise UsageError(f"sweep {ranged[0]}: a range needs --sampler tpe with --trials N (the grid sampler "
                             "needs a list of values)")
        if trials is not None:
            raise UsageError("--trials: a grid runs every point once; --trials is for --sampler tpe")
    elif trials is None or trials < 1:
        raise UsageError("--sampler tpe needs --trials N (N >= 1): how many trials the study runs")
    if seeds < 1:
        raise UsageError(f"--seeds: {seeds}; a trial trains at least one seed")
    return Sweep(Path(out), trees, names, overrides, space, sampler, trials, prune, storage,
                 study or Path(out).as_posix(), tuple(dataset.search_overrides), tuple(dataset.final_overrides),
                 resolve_config(trees, fixed_sets, bind=False), seeds)

