"""Rows of a sweep, one per run folder (an interrupted trial and its retries are one row), the selection and
what a sweep has so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plan import Sweep


@dataclass
class TrialRow:
    """One point of the sweep, as shown in ``sweep.md`` / ``sweep.csv``.

    Attributes:
        trial: the number of its first trial.
        run_dir: its run folder name under ``OUT/trials``.
        params: its values.
        state: ``complete``, ``pruned``, ``failed``, ``running``, ``waiting`` (a retry) or ``interrupted`` (not
            retried yet).
        val_acc: the best validation accuracy (so far, for a trial that did not complete).
        epoch: the epoch of ``val_acc``.
        seconds: wall time of its attempts (an attempt killed outright is not counted: its time is unknown).
        note: why it failed, where it was pruned, how often it was resumed.
    """

    trial: int
    run_dir: str
    params: dict[str, Any]
    state: str
    val_acc: float | None
    epoch: int | None
    seconds: float
    note: str = ""


STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def _retried(trials) -> set[int]:
    """Numbers of trials that were retried (each retry lists the attempts before it)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def trial_rows(study) -> list[TrialRow]:
    """The study's trials as rows, one per point (its last attempt), by trial number."""
    from datetime import datetime

    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    retried = _retried(trials)
    now = datetime.now()  # Optuna's trial times are naive local times
    rows = []
    for t in trials:
        if t.number in retried:
            continue
        attempts = [by_number[n] for n in t.system_attrs.get("retry_history", []) if n in by_number] + [t]
        seconds = sum(a.user_attrs.get("seconds", 0.0) for a in attempts)
        if t.state.name == "RUNNING" and t.datetime_start is not None:
            seconds += (now - t.datetime_start).total_seconds()
        state = STATES[t.state.name]
        if state == "failed" and t.user_attrs.get("interrupted"):
            state = "interrupted"  # retried by the next worker or run
        steps = t.intermediate_values
        if state == "complete":
            val, epoch = t.value, t.user_attrs.get("best_epoch")
        elif steps:
            # ties keep the earlier epoch, as in training
            epoch = min(steps, key=lambda s: (-steps[s], s))
            val = steps[epoch]
        else:
            val, epoch = None, None
        notes = []
        if state == "pruned":
            notes.append(f"pruned after epoch {max(steps)}" if steps else "pruned")
        if t.user_attrs.get("error"):
            notes.append(t.user_attrs["error"])
        if len(attempts) > 1:
            notes.append(f"resumed after {len(attempts) - 1} interruption{'s' if len(attempts) > 2 else ''}")
        params = t.params or next((a.params for a in attempts if a.params), {})
        rows.append(TrialRow(attempts[0].number, t.user_attrs.get("run_dir", f"trial-{attempts[0].number:04d}"),
                             params, state, val, epoch, seconds, "; ".join(notes)))
    return sorted(rows, key=lambda r: r.trial)


def select_best(rows: Sequence[TrialRow]) -> TrialRow | None:
    """The complete row of highest validation accuracy; ties: the earlier best epoch, then the earlier trial."""
    complete = [r for r in rows if r.state == "complete"]
    return min(complete, key=lambda r: (-r.val_acc, r.epoch, r.trial)) if complete else None


def ties(rows: Sequence[TrialRow], best: TrialRow | None) -> list[TrialRow]:
    """The other complete rows with the best row's validation accuracy."""
    if best is None:
        return []
    return [r for r in rows if r.state == "complete" and r is not best and r.val_acc == best.val_acc]


@dataclass
class SweepResult:
    """What a sweep has so far.

    Attributes:
        sweep: the sweep.
        rows: one per point.
        complete: no point is left and none is running: the study is finished.
        best: the selected row (``None`` until a trial completes).
        best_test_acc: test accuracy of the selected trial's ``best.pt`` (once the study is complete).
        final: the final run's summary (datasets with a final run, once the study is complete).
        files: the files written.
    """

    sweep: Sweep
    rows: list[TrialRow]
    complete: bool
    best: TrialRow | None = None
    best_test_acc: float | None = None
    final: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def test_acc(self) -> float | None:
        """The result: the final run's test accuracy where the dataset has one, else the selected trial's."""
        if self.final is not None:
            return self.final["test_acc"]
        return self.best_test_acc

    def counts(self) -> dict[str, int]:
        return {state: sum(r.state == state for r in self.rows) for state in (*STATES.values(), "interrupted")}

