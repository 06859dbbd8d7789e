"""The study of a sweep: opening it, workers taking part in it, and finishing it."""

from __future__ import annotations

import os
import socket
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock

from ...common.errors import UsageError, first_sentence
from ...config.overrides import format_override
from ...runs.folder import RunFolder, setting_differences
from ...use.evaluate import evaluate_checkpoint
from ..queue import QueuedRun, status, train
from .locks import _recover
from .outputs import read_result, write_files
from .plan import JOURNAL, Sweep
from .rows import SweepResult, TrialRow, _retried, select_best, trial_rows
from .space import Dimension

PRUNE_STARTUP_TRIALS = 3  # the median pruner compares with this many finished trials before it prunes any


def open_study(sweep: Sweep):
    """Create or load the sweep's study; an existing study must have the same space, sampler and settings.

    Raises:
        UsageError: the storage cannot be opened, or the study holds another search (nothing is changed).
    """
    import optuna

    storage = _storage(sweep)
    if sweep.sampler == "grid":
        # a fixed seed: every worker shuffles the grid the same way
        sampler = optuna.samplers.GridSampler({d.key: list(d.values) for d in sweep.space}, seed=0)
    else:
        sampler = optuna.samplers.TPESampler(seed=sweep.base.train.seed)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS) if sweep.prune
              else optuna.pruners.NopPruner())
    try:
        try:  # load first: an existing study's storage is only read until its search is known to be the same
            study = optuna.load_study(study_name=sweep.study_name, storage=storage, sampler=sampler, pruner=pruner)
        except KeyError:
            study = optuna.create_study(storage=storage, study_name=sweep.study_name, direction="maximize",
                                        sampler=sampler, pruner=pruner, load_if_exists=True)
    except Exception as exc:  # a database that refuses the connection fails here, in its driver's own way
        raise UsageError(f"--storage {sweep.storage_label()}: cannot open study {sweep.study_name!r} "
                         f"({first_sentence(exc)})") from None
    stored, wanted = study.user_attrs.get("identity"), sweep.identity()
    if stored is None:
        study.set_user_attr("identity", wanted)
    elif stored != wanted:
        raise UsageError(f"study {sweep.study_name!r} in {sweep.storage_label()} holds another search "
                         f"({_identity_difference(stored, wanted)}); rerun it with its own settings, or choose "
                         "another --out (or --study)")
    return study


def _storage(sweep: Sweep):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if sweep.storage is None:
        sweep.out.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(sweep.out / JOURNAL)))
    try:
        return optuna.storages.get_storage(sweep.storage)
    except Exception as exc:  # unknown dialects, missing drivers, unreachable servers: each its own exception
        raise UsageError(f"--storage {sweep.storage}: cannot open it ({first_sentence(exc)}); give an Optuna "
                         "storage URL such as sqlite:///sweep.db or postgresql://user@host/db") from None


def _identity_difference(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    if stored.get("space") != wanted["space"]:
        there = ", ".join(Dimension(**d).describe() for d in stored.get("space", []))
        here = ", ".join(Dimension(**d).describe() for d in wanted["space"])
        return f"search space {there} there, {here} now"
    if stored.get("sampler") != wanted["sampler"]:
        return f"sampler {stored.get('sampler')} there, {wanted['sampler']} now"
    return setting_differences(stored.get("settings", {}), wanted["settings"]) or "other settings"


def run_sweep(sweep: Sweep, console=None) -> SweepResult:
    """Take part in ``sweep`` until no point is left; then, if no trial is running elsewhere, finish it.

    Finished trials are never run again; an interrupted one resumes from its run folder. Once the study is
    complete the selected trial is evaluated on the test split (once: the result is kept in ``sweep.json``) and
    the dataset's final run is trained (or reused). The tables, ``best.yaml`` and the plot are written in any case.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # this module reports trials itself
    study = open_study(sweep)
    locks = sweep.out / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    own = FileLock(locks / f"worker-{worker}.lock")
    own.acquire()
    try:
        shared = FileLock(locks / "sweep.lock")
        while True:
            shared.acquire()
            try:
                _recover(study, locks)
                if not _has_work(study, sweep):
                    break
                objective = _Objective(sweep, study, worker, shared, console)
                study.optimize(objective, n_trials=1, catch=(RuntimeError,), gc_after_trial=True)
            finally:
                shared.release()
    finally:
        own.release()
        Path(own.lock_file).unlink(missing_ok=True)
    return finish(sweep, study, console)


def _has_work(study, sweep: Sweep) -> bool:
    """A retry is waiting, or a point was never started."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return True
    if sweep.sampler == "grid":
        # the grid sampler records each trial's point as its grid id, retries keep theirs
        return len({t.system_attrs["grid_id"] for t in trials if "grid_id" in t.system_attrs}) < sweep.size
    retried = _retried(trials)
    return sum(t.number not in retried for t in trials) < sweep.size


class _Objective:
    """One trial: claim it (worker, run folder, values) under the sweep lock, then train it without that lock."""

    def __init__(self, sweep: Sweep, study, worker: str, shared: FileLock, console):
        self.sweep, self.study, self.worker, self.shared, self.console = sweep, study, worker, shared, console
        self.rows = trial_rows(study)  # the state before this trial, for the progress line

    def __call__(self, trial) -> float:
        import optuna

        trial.set_user_attr("worker", self.worker)
        for key, value in (("interrupted", False), ("seconds", 0.0)):  # a retry inherits its attempts' attributes
            trial.set_user_attr(key, value)
        frozen = self.study.get_trials(deepcopy=False)[trial.number]
        first = (frozen.system_attrs.get("retry_history") or [trial.number])[0]
        run_name = trial.user_attrs.get("run_dir") or f"trial-{first:04d}"
        trial.set_user_attr("run_dir", run_name)
        params = {d.key: d.suggest(trial) for d in self.sweep.space}
        # the trial is claimed: other workers may claim the next one while this one trains. The lock is taken
        # again before the trial's end is stored, so a worker that holds it sees no trial end under its feet.
        self.shared.release()
        start = time.monotonic()
        try:
            _progress_line(self.console, self.sweep, self.rows, first, params, resumed=first != trial.number)
            run = self.sweep.trial(params, run_name)
            summary = self._train(trial, run)
            trial.set_user_attr("best_epoch", summary["best_epoch"])
            if self.sweep.seeds == 1:
                return summary["val_acc"]
            # the other seeds, unpruned and never tested: the objective is the mean of every seed's best validation
            # accuracy
            accs = [summary["val_acc"], *(train(seed, self.console, final_test=False)["val_acc"]
                                          for seed in run.seeds(self.sweep.seeds)[1:])]
            trial.set_user_attr("seed_val_accs", accs)
            return statistics.fmean(accs)
        except optuna.TrialPruned as exc:
            self._say(f"trial {first} {exc}")
            raise
        except RuntimeError as exc:  # diverged, out of memory: this trial failed, the sweep goes on
            error = str(exc).splitlines()[0][:200]
            trial.set_user_attr("error", error)
            self._say(f"trial {first} failed: {error}")
            raise
        except BaseException:  # Ctrl-C, a missing data folder: not the trial's fault, retried later
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            trial.set_user_attr("seconds", time.monotonic() - start)
            self.shared.acquire()

    def _say(self, line: str) -> None:
        from rich.console import Console

        (self.console or Console(stderr=True)).print(line, highlight=False, markup=False, soft_wrap=True)

    def _train(self, trial, run: QueuedRun) -> dict[str, Any]:
        import optuna

        for row in RunFolder(run.folder).read_metrics():  # a retry: what its earlier attempts saw
            if "val_acc" in row:
                trial.report(row["val_acc"], row["epoch"])

        def on_epoch(row: dict[str, Any]) -> None:
            if "val_acc" in row:
                trial.report(row["val_acc"], row["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

        # a trial that finished just before its worker was killed is read back
        return train(run, self.console, final_test=False, on_epoch=on_epoch)


def _progress_line(console, sweep: Sweep, rows: list[TrialRow], number: int, params: dict[str, Any],
                   resumed: bool) -> None:
    """A bar over the trials and where the sweep stands, above the trial's own training progress."""
    from rich.console import Console
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    console = console or Console(stderr=True)
    done = sum(r.state in ("complete", "pruned", "failed") for r in rows)
    best = select_best(rows)
    status = [f"{done}/{sweep.size} done"]
    status += [f"{n} {state}" for state in ("pruned", "failed") if (n := sum(r.state == state for r in rows))]
    if best is not None:
        status.append(f"best val {best.val_acc:.2f} (trial {best.trial})")
    line = Table.grid(padding=(0, 2))
    line.add_row(f"[bold]trial {number}[/]" + (" (resumed)" if resumed else ""),
                 " ".join(format_override(k, v) for k, v in sorted(params.items())),
                 ProgressBar(total=sweep.size, completed=done, width=20), " · ".join(status))
    console.rule(style="dim")
    console.print(line)


def finish(sweep: Sweep, study, console=None) -> SweepResult:
    """Rows and files; with the study complete, also the selected trial's test accuracy and the final run.

    Several workers may finish at once: the final lock lets one evaluate and train while the others wait and
    then reuse its results (``sweep.json``, ``OUT/final/summary.json``).
    """
    from optuna.trial import TrialState

    rows = trial_rows(study)
    complete = not _has_work(study, sweep) and not any(  # _has_work counts the waiting retries
        t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))
    result = SweepResult(sweep, rows, complete, select_best(rows))
    if complete and result.best is not None:
        with FileLock(sweep.out / "locks" / "final.lock"):
            result.best_test_acc = _best_test_acc(sweep, result.best)
            if sweep.final_overrides:
                result.final = _final_run(sweep, result.best, console)
            write_files(result)
    else:
        write_files(result)
    return result


def _best_test_acc(sweep: Sweep, best: TrialRow) -> float:
    """The selected trial's ``best.pt`` on the test split (the mean over its seeds): evaluated once, then read from
    ``sweep.json``."""
    kept = read_result(sweep.out)
    if kept is not None and kept.get("best", {}).get("run_dir") == best.run_dir and "test_acc" in kept["best"]:
        return kept["best"]["test_acc"]
    runs = sweep.trial(best.params, best.run_dir).seeds(sweep.seeds)
    return statistics.fmean(evaluate_checkpoint(RunFolder(run.folder).best, "test")["acc"] for run in runs)


def _final_run(sweep: Sweep, best: TrialRow, console) -> dict[str, Any]:
    run = sweep.final_run(best.params)
    placement = status(run)
    if placement.status == "conflict":
        raise UsageError(f"{run.folder} holds a final run of other values ({placement.detail}); the selection "
                         "changed: move that folder away and rerun")
    return train(run, console)


