"""Worker locks of a sweep: a worker holds its own lock file while it lives; interrupted trials are retried."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from filelock import FileLock, Timeout

from .rows import _retried


def _recover(study, locks: Path) -> None:
    """Retry every interrupted trial once (called with the sweep lock held).

    Workers claim trials and store their ends while holding the sweep lock, which the caller holds now: a
    RUNNING trial is training, or its worker died. It died when its lock file is free (or gone), or when the
    trial names no worker (its worker died while claiming it). A FAILED trial is interrupted when its objective
    said so (Ctrl-C, an error that is not the trial's own). Optuna's ``RetryHeartbeatStaleTrialCallback`` enqueues the
    retry with the trial's point (its grid id, or its parameters) and user attributes (its run folder).
    """
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    with warnings.catch_warnings():  # "experimental" since Optuna 2.8, under this name since 4.9
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback()
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    dead: dict[str, bool] = {}
    for t in trials:
        if t.number in retried:
            continue
        if t.state == TrialState.RUNNING:
            owner = t.user_attrs.get("worker")
            if owner is not None:
                if owner not in dead:
                    dead[owner] = _worker_is_dead(locks / f"worker-{owner}.lock")
                if not dead[owner]:
                    continue
            # the grid sampler stops the study when its last point finishes, which raises outside of
            # study.optimize; the trial's state is stored before that (optuna/optuna#4121)
            with contextlib.suppress(RuntimeError):
                study.tell(t.number, state=TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")):
            continue
        retry(study, t)
    for owner, is_dead in dead.items():
        if is_dead:
            (locks / f"worker-{owner}.lock").unlink(missing_ok=True)


def _worker_is_dead(path: Path) -> bool:
    """A worker holds its lock file while it lives; the operating system frees it when the process dies."""
    if not path.is_file():
        return True
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return False
    lock.release()
    return True

