"""``insvp compare``: several methods trained on one recipe, one after another, in a Table-1-style table.

Every method gets the same data, backbone, seed and schedule: the recipe with only ``method.name``
switched (its per-method deltas ``methods: {M: ...}`` apply). Every method's config, and what it needs from
the data (TransHP: a hierarchy), is checked before the first one trains. Finished runs are reused and
interrupted ones resumed, so an interrupted comparison continues where it stopped.

With ``sweep=True`` each method is compared at its best instead: ``OUT/<method>`` is an ``insvp sweep`` of the
method (the recipes' ``sweep:`` section, else the method's default grid), run or reused; its row is the
selected trial, with the test accuracy of that trial (or of the dataset's final run) and the chosen values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.atomic import atomic_write_text
from ..common.errors import UsageError
from ..common.tables import Spread, csv_table, markdown_table, short_value
from ..config.overrides import overrides_tree
from ..resolve.layers import resolve_config
from ..resolve.recipes import Recipe
from ..runs.folder import RunFolder
from .queue import QueuedRun, train

HEADERS = ("method", "extra params", "trainable params", "val acc", "test acc", "train images/s")
TUNED_HEADERS = (*HEADERS, "chosen values", "trials")


@dataclass
class MethodResult:
    """One row of a comparison: a method's run (or its sweep's selected trial) and its training speed.

    Attributes:
        method: the method's name.
        summary: the run's ``summary.json`` (for a sweep: the selected trial's, with the sweep's test accuracy).
        train_images_per_s: mean training images/s of that run.
        chosen: for a sweep, the chosen values (``{"train.lr": 0.002}``); ``None`` for an untuned run.
        trials: for a sweep, ``complete/all`` trials.
        seeds: the summaries of every seed (``--seeds N``), the first one's included; empty: one seed.
    """

    method: str
    summary: dict[str, Any]
    train_images_per_s: float
    chosen: dict[str, Any] | None = None
    trials: str = ""
    seeds: list[dict[str, Any]] = field(default_factory=list)

    def accuracy(self, key: str) -> float | str:
        """``val_acc`` or ``test_acc``: the run's, or mean ± std (N) over its seeds."""
        if len(self.seeds) < 2:
            return self.summary[key]
        return Spread.of([s[key] for s in self.seeds]).format()

    def row(self) -> tuple:
        s = self.summary
        row = (self.method, s["trainable_params_without_head"], s["trainable_params"], self.accuracy("val_acc"),
               self.accuracy("test_acc"), self.train_images_per_s)
        if self.chosen is None:
            return row
        chosen = sorted(self.chosen.items())
        values = ", ".join(f"{key.rsplit('.', 1)[-1]}={short_value(value)}" for key, value in chosen)
        return (*row, values, self.trials)


def mean_train_speed(run: RunFolder) -> float:
    speeds = [r["train_images_per_s"] for r in run.read_metrics() if "train_images_per_s" in r]
    return sum(speeds) / max(len(speeds), 1)


def refuse_method_override(overrides: Sequence[str], owner: str) -> None:
    """A command that trains its own list of methods refuses ``--set method.name``: the value could not win.

    Raises:
        UsageError: naming the ``--set`` and where the methods come from instead.
    """
    for text in overrides:  # `method.name=x` and `method={name: x}` alike
        method = overrides_tree([text]).get("method")
        if isinstance(method, dict) and "name" in method:
            raise UsageError(f"--set {text}: the methods come from {owner}; leave method.name out of --set")


def compare_runs(recipe: Recipe | Sequence[Recipe] | None, methods: list[str], out: Path,
                 overrides: list[str] | tuple[str, ...] = (), console=None, sweep: bool = False,
                 seeds: int = 1, owner: str = "--methods") -> list[MethodResult]:
    """Train each of ``methods`` on ``recipe`` into ``out/<method>``; write ``out/comparison.{md,csv}``.

    With ``seeds`` above 1 each method trains that many times (:mod:`.queue`: ``out/<method>``, then
    ``out/<method>-seed1`` ...) and its accuracies are mean ± std (N). With ``sweep``, ``out/<method>`` is a sweep
    of the method and its row the selected trial (with ``seeds``: every trial trains them, the sweep selects on
    their mean and the row shows the means); a method whose sweep is not finished (its last trials run in another
    worker) or has no complete trial has no row.

    Raises:
        UsageError: before anything trains: a bad recipe or override, ``--set method.name`` (the methods come from
            ``owner``), a method whose data lacks what it needs, a folder that holds a run of other settings.
    """
    refuse_method_override(overrides, owner)
    if sweep:
        results = _compare_sweeps(recipe, methods, out, overrides, console, seeds)
    else:
        # fail fast: a bad value or a need the data does not meet stops the comparison before anything trains
        runs = {m: QueuedRun(resolve_config(recipe, [*overrides, f"method.name={m}"]), out / m)
                for m in methods}
        results = []
        for method, run in runs.items():
            summaries = [train(seed, console) for seed in run.seeds(seeds)]
            results.append(MethodResult(method, summaries[0], mean_train_speed(RunFolder(run.folder)),
                                        seeds=summaries if seeds > 1 else []))
    headers = TUNED_HEADERS if sweep else HEADERS
    rows = [r.row() for r in results]
    atomic_write_text(markdown_table(headers, rows, digits=2), out / "comparison.md")
    atomic_write_text(csv_table(headers, rows), out / "comparison.csv")
    return results


def _compare_sweeps(recipe, methods: list[str], out: Path, overrides, console, seeds: int) -> list[MethodResult]:
    from .sweep.plan import TRIALS, plan_sweep
    from .sweep.study import run_sweep

    # fail fast; with seeds, each trial trains them all and the sweep selects on their mean
    plans = {m: plan_sweep(recipe, [*overrides, f"method.name={m}"], out / m, seeds=seeds) for m in methods}
    results = []
    for method, plan in plans.items():
        result = run_sweep(plan, console)
        if not result.complete or result.best is None:
            continue
        trial = RunFolder(plan.out / TRIALS / result.best.run_dir)
        summary = {**trial.read_summary(), "val_acc": result.best.val_acc, "test_acc": result.test_acc}
        counts = result.counts()
        results.append(MethodResult(method, summary, mean_train_speed(trial), result.best.params,
                                    f"{counts['complete']}/{len(result.rows)}"))
    return results
