"""``insvp reproduce --gpus 0,1,...``: one worker process per GPU, sharing the table's runs.

Any number of ``insvp reproduce`` commands on the same table and ``--runs`` folder share its runs (several
on one node, or the tasks of a SLURM array on a shared file system): a worker trains a run while holding the
run folder's lock (:class:`~insvp_cli.runs.folder.RunLock`, an OS file lock that dies with its process), skips a run
another worker holds, reuses a finished one and resumes an interrupted one. ``--gpus`` starts such workers from
one command, each with one GPU (``CUDA_VISIBLE_DEVICES``), its output in ``RUNS/workers/gpu-<id>.log``, and
waits for them all.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ...common.errors import UsageError

WORKERS = "workers"


def parse_gpus(text: str) -> list[str]:
    """``0,1,3`` -> ``["0", "1", "3"]``: distinct device indices.

    Raises:
        UsageError: anything else (the message shows the expected form).
    """
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or any(not g.isdigit() for g in gpus) or len(set(gpus)) != len(gpus):
        raise UsageError(f"--gpus: {text!r} is not a comma-separated list of distinct GPU indices, e.g. --gpus 0,1")
    return gpus


def reproduce_args(table: str, data_root: Path, runs: Path, seeds: int, weights_dir: Path | None,
                   methods: str | None, tune: bool, overrides: Sequence[str]) -> list[str]:
    """The ``insvp reproduce`` arguments of one worker, from the options of the command that starts them."""
    return [table, "--data-root", str(data_root), "--runs", str(runs), "--seeds", str(seeds),
            *(["--weights-dir", str(weights_dir)] if weights_dir else []), *(["--methods", methods] if methods else []),
            *(["--tune"] if tune else []), *(x for s in overrides for x in ("--set", s))]


def run_workers(args: Sequence[str], gpus: Sequence[str], runs: Path, say) -> int:
    """Start ``insvp reproduce ARGS`` once per GPU (``CUDA_VISIBLE_DEVICES`` set to it) and wait for all of them.

    Args:
        args: the ``reproduce`` arguments every worker gets (without ``--gpus``).
        gpus: device indices, one worker each.
        runs: the ``--runs`` folder; the workers' logs go to ``runs/workers/gpu-<id>.log``.
        say: prints one line.

    Returns:
        0 when every worker succeeded, else the first non-zero exit status.
    """
    logs = runs / WORKERS
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for gpu in gpus:
        log = logs / f"gpu-{gpu}.log"
        with log.open("w") as out:  # the child keeps its own handle
            procs.append((gpu, log, subprocess.Popen(
                [sys.executable, "-m", "insvp_cli", "reproduce", *args], stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "CUDA_VISIBLE_DEVICES": gpu})))
        say(f"worker on GPU {gpu}: pid {procs[-1][2].pid}, log {log}")
    status = 0
    try:
        for gpu, log, proc in procs:
            code = proc.wait()
            say(f"worker on GPU {gpu} exited with {code}" + (f" (see {log})" if code else ""))
            status = status or code
    except KeyboardInterrupt:
        for _, _, proc in procs:
            proc.terminate()
        raise
    return status
