"""The CPUs this process may use, and how many loader worker processes they feed.

``data.num_workers: null`` (the default) takes the CPUs of each process. A count given by hand is capped at them:
a DataLoader with more worker processes than CPUs only adds processes that wait for each other (and torch warns
about it twice per loader); ``--workers 500`` for two images would start 500 processes. Counts are decided where the
loaders are made, with one note per capped count, so a config written on a large machine runs unchanged on a small
one.
"""

from __future__ import annotations

import os

from ..common.notes import note

# the most worker processes the default takes (more rarely pays: a process decodes a few hundred images/s)
MAX_AUTO_WORKERS = 16

_noted: set[tuple[int, int]] = set()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a batch scheduler's share, not the machine's count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # no affinity masks (macOS)
        return os.cpu_count() or 1


def loader_workers(requested: int | None, option: str = "data.num_workers") -> int:
    """Loader worker processes for ``requested``.

    ``None``: the CPUs this process may use, shared among the processes ``torchrun`` starts on this node
    (``LOCAL_WORLD_SIZE``), one left to the process itself, at most :data:`MAX_AUTO_WORKERS`. A number: itself, at
    most :func:`usable_cpus`; a note (once per count) says when it was capped.
    """
    cpus = usable_cpus()
    if requested is None:
        per_process = cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        return max(0, min(MAX_AUTO_WORKERS, per_process - 1))
    if requested <= cpus:
        return requested
    if (requested, cpus) not in _noted:
        _noted.add((requested, cpus))
        note(f"{option}: {requested} worker processes capped at {cpus}, the CPUs this process may use")
    return cpus
