"""The run queue under ``insvp compare``, ``sweep``, ``reproduce`` and ``quickstart``.

Each of them trains many runs into folders that may already hold them (a finished comparison run again, an
interrupted table continued, a second worker on the same sweep). What to do with a run is decided here, by one
function, :func:`status`:

- ``new``: the folder holds no run yet;
- ``resume``: it holds this run, unfinished: training continues from its last epoch;
- ``done``: it holds this run, finished: its summary is read;
- ``conflict``: it holds a run of other settings (other epochs, another learning rate): nothing is trained, so
  a table never mixes two protocols silently. Settings that only say where files are or how fast a run goes
  (:data:`~insvp_cli.runs.folder.LOCATION_KEYS`) do not count;
- ``held``: another process trains in it now (it holds the folder's lock).

Several seeds of one run (``--seeds N``) are made one way everywhere (:meth:`QueuedRun.seed`): seed 0 is the run's
own folder, so a single-seed run already there counts as seed 0, and seed ``k`` goes beside it in
``<run>-seed<k>`` with ``train.seed`` raised by ``k``; only the initialisation and the data order change, the
splits (``data.seed``) stay, except a few-shot run's K images per class (``data.shots``), whose ``data.shot_seed``
is raised by ``k`` too, as NOAH's few-shot protocol draws new shots per seed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..common.errors import RunFinished, RunInUse, UsageError
from ..common.notes import warn
from ..config.overrides import flatten, format_override
from ..config.schema import Config
from ..resolve.stored import with_overrides
from ..runs.folder import LOCATION_KEYS, RunFolder, setting_differences

Status = Literal["new", "resume", "done", "conflict", "held"]
SEED_SUFFIX = "-seed"


@dataclass(frozen=True)
class QueuedRun:
    """One run to train: its config, resolved once, and its folder.

    Attributes:
        config: the run's config (its data requirements bound).
        folder: where it trains.
    """

    config: Config
    folder: Path

    def seed(self, k: int) -> QueuedRun:
        """Seed ``k`` of this run: ``<folder>-seed<k>`` with the values of :meth:`seed_overrides` (seed 0: the run
        itself)."""
        if k == 0:
            return self
        return QueuedRun(with_overrides(self.config, self.seed_overrides(k), f"seed {k} of {self.folder}"),
                         self.folder.with_name(f"{self.folder.name}{SEED_SUFFIX}{k}"))

    def seeds(self, n: int) -> list[QueuedRun]:
        """Seeds ``0 .. n-1`` of this run."""
        return [self.seed(k) for k in range(n)]

    def seed_overrides(self, k: int) -> list[str]:
        """The ``--set`` values that make seed ``k`` of this run: ``train.seed`` raised by ``k``, and a few-shot run's
        ``data.shot_seed`` too (also what a dry run prints, so its commands make the same runs)."""
        cfg = self.config
        shots = [format_override("data.shot_seed", cfg.data.shot_seed + k)] if cfg.data.shots is not None else []
        return [format_override("train.seed", cfg.train.seed + k), *shots]


@dataclass(frozen=True)
class Placement:
    """What :func:`status` found in a run's folder.

    Attributes:
        status: ``new``, ``resume``, ``done``, ``conflict`` or ``held``.
        detail: what conflicts (``train.epochs: 8 there, 2 now``), or why the folder cannot be read.
        moved: the location keys whose values differ from the stored run's (a resumed run's new paths or devices).
    """

    status: Status
    detail: str = ""
    moved: dict[str, Any] = field(default_factory=dict)


def status(run: QueuedRun) -> Placement:
    """What the folder of ``run`` holds, decided once for every command that queues runs (see the module doc)."""
    folder = RunFolder(run.folder)
    if not folder.is_run():
        return Placement("new")
    try:
        stored = flatten(folder.read_config().to_dict())
    except UsageError as exc:
        return Placement("conflict", f"its {folder.CONFIG} cannot be read back: {exc}")
    wanted = flatten(run.config.to_dict())
    differences = setting_differences(stored, wanted)
    if differences:
        return Placement("conflict", differences)
    if folder.is_held():
        return Placement("held", f"another process trains in {folder}")
    moved = {k: wanted.get(k) for k in LOCATION_KEYS if stored.get(k) != wanted.get(k)}
    return Placement("done" if folder.is_finished() else "resume", "", moved)


def train(run: QueuedRun, console=None, *, final_test: bool = True,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The run's summary: read if it finished, else trained now (from its last epoch if it was interrupted).

    Raises:
        UsageError: its folder holds a run of other settings.
        RunInUse: another process trains in its folder.
    """
    placement = status(run)  # what fit finds holding the folder's lock may have changed since: see below
    if placement.status == "conflict":
        raise UsageError(f"{run.folder} holds a run with other settings ({placement.detail}); move it away, choose "
                         "another folder, or pass the same settings")
    if placement.status == "held":
        raise RunInUse(f"{run.folder} is in use: {placement.detail}")
    if placement.status == "done":
        return RunFolder(run.folder).read_summary()
    from ..train.loop import fit  # torch: only when something trains

    try:
        return fit(run.config, run.folder, console=console, final_test=final_test, on_epoch=on_epoch)
    except RunFinished:  # another process finished it between status() and fit taking the lock
        return RunFolder(run.folder).read_summary()


def finished_seeds(folder: Path) -> list[RunFolder]:
    """``folder`` and its ``-seed<k>`` siblings that hold a finished run, in seed order."""
    pattern = re.compile(re.escape(folder.name) + re.escape(SEED_SUFFIX) + r"(\d+)")
    siblings = sorted((int(m.group(1)), p) for p in folder.parent.glob(f"{folder.name}{SEED_SUFFIX}*")
                      if (m := pattern.fullmatch(p.name)))
    runs = [RunFolder(p) for p in (folder, *(p for _, p in siblings))]
    return [run for run in runs if run.is_finished()]


def test_accuracies(runs: Sequence[RunFolder]) -> list[float]:
    """The test accuracy in each finished run's summary; a summary that cannot be read or holds no test accuracy is
    skipped with a warning (the run counts as missing)."""
    accuracies = []
    for run in runs:
        try:
            acc = run.read_summary().get("test_acc")
        except UsageError as exc:
            warn(f"skipped: {exc}")
            continue
        if isinstance(acc, bool) or not isinstance(acc, int | float) or not math.isfinite(acc):
            warn(f"{run.path / run.SUMMARY}: skipped: its test_acc is {acc!r}, not a number")
            continue
        accuracies.append(float(acc))
    return accuracies
