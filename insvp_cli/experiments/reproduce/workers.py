"""``insvp reproduce --gpus 0,1,...``: one worker process per GPU, sharing the table's runs.

Any number of ``insvp reproduce`` commands on the same table and ``--runs`` folder share its runs (several
on one node, or the tasks of a SLURM array on a shared file system): a worker trains a run while holding the
run folder's lock (:class:`~insvp_cli.runs.folder.RunLock`, an OS file lock that dies with its process), skips a run
another worker holds, reuses a finished one and resumes an interrupted one. ``--gpus`` starts such workers from
one command, each with one GPU (``CUDA_VISIBLE_DEVICES``), its output in ``RUNS/workers/gpu-<id>.log``, and
waits for them all.

``--gpus`` indices count the GPUs this command sees: under a scheduler that sets ``CUDA_VISIBLE_DEVICES`` (SLURM's
``2,5``), ``--gpus 0,1`` gives the workers GPUs 2 and 5. Every worker trains with ``train.device=cuda``, so a worker
whose GPU is unusable fails instead of training on the CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...common.errors import UsageError
from ...runtime.devices import visible_gpus

WORKERS = "workers"


@dataclass(frozen=True)
class Worker:
    """One worker process: its GPU as ``--gpus`` named it, that GPU as the worker sees it, its ``train.device``.

    Attributes:
        index: the ``--gpus`` index (names the worker and its log).
        visible: the worker's ``CUDA_VISIBLE_DEVICES``: the parent's entry at ``index``.
        device: the worker's ``train.device``.
    """

    index: str
    visible: str
    device: str = "cuda"


def parse_gpus(text: str) -> list[str]:
    """``0,1,3`` -> ``["0", "1", "3"]``: distinct device indices.

    Raises:
        UsageError: anything else (the message shows the expected form).
    """
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or any(not g.isdigit() for g in gpus) or len(set(gpus)) != len(gpus):
        raise UsageError(f"--gpus: {text!r} is not a comma-separated list of distinct GPU indices, e.g. --gpus 0,1")
    return gpus


def gpu_workers(text: str) -> list[Worker]:
    """The workers of ``--gpus TEXT``: each index checked against the GPUs this process sees and mapped through its
    ``CUDA_VISIBLE_DEVICES`` (torch is not imported).

    Raises:
        UsageError: a malformed list, or an index beyond the visible GPUs (the message says how many there are).
    """
    gpus = parse_gpus(text)
    count = visible_gpus()
    beyond = [g for g in gpus if int(g) >= count]
    parent = os.environ.get("CUDA_VISIBLE_DEVICES")
    mask = f" (CUDA_VISIBLE_DEVICES={parent})" if parent is not None else ""
    if not count:
        raise UsageError(f"--gpus {text}: this process sees no CUDA GPU{mask}; leave --gpus out to train on the CPU")
    if beyond:
        raise UsageError(f"--gpus {text}: this process sees {count} GPU{'s' if count > 1 else ''}, numbered "
                         f"0-{count - 1}{mask}; GPU {beyond[0]} is not one of them")
    entries = [e.strip() for e in parent.split(",")] if parent is not None else None
    return [Worker(g, entries[int(g)] if entries is not None else g) for g in gpus]


def reproduce_args(table: str, data_root: Path, runs: Path, seeds: int, weights_dir: Path | None,
                   methods: str | None, tune: bool, overrides: Sequence[str]) -> list[str]:
    """The ``insvp reproduce`` arguments of one worker, from the options of the command that starts them."""
    return [table, "--data-root", str(data_root), "--runs", str(runs), "--seeds", str(seeds),
            *(["--weights-dir", str(weights_dir)] if weights_dir else []), *(["--methods", methods] if methods else []),
            *(["--tune"] if tune else []), *(x for s in overrides for x in ("--set", s))]


def run_workers(args: Sequence[str], workers: Sequence[Worker], runs: Path, say) -> int:
    """Start ``insvp reproduce ARGS`` once per worker (``CUDA_VISIBLE_DEVICES`` and ``train.device`` set to its own)
    and wait for all of them.

    Args:
        args: the ``reproduce`` arguments every worker gets (without ``--gpus``).
        workers: one process each (:func:`gpu_workers`).
        runs: the ``--runs`` folder; the workers' logs go to ``runs/workers/gpu-<index>.log``.
        say: prints one line.

    Returns:
        0 when every worker succeeded, else the first non-zero exit status.
    """
    logs = runs / WORKERS
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for worker in workers:
        log = logs / f"gpu-{worker.index}.log"
        # the device last: it wins over any --set of the same key
        command = [sys.executable, "-m", "insvp_cli", "reproduce", *args, "--set", f"train.device={worker.device}"]
        with log.open("w") as out:  # the child keeps its own handle
            procs.append((worker, log, subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                                        env={**os.environ, "CUDA_VISIBLE_DEVICES": worker.visible})))
        say(f"worker on GPU {worker.index} (CUDA_VISIBLE_DEVICES={worker.visible}): pid {procs[-1][2].pid}, log {log}")
    status = 0
    try:
        for worker, log, proc in procs:
            code = proc.wait()
            say(f"worker on GPU {worker.index} exited with {code}" + (f" (see {log})" if code else ""))
            status = status or code
    except KeyboardInterrupt:
        for _, _, proc in procs:
            proc.terminate()
        raise
    return status
