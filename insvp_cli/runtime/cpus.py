"""The CPUs this process may use, and loader worker counts capped at them.

A DataLoader with more worker processes than CPUs only adds processes that wait for each other (and torch warns
about it twice per loader); ``--workers 500`` for two images would start 500 processes. Counts are capped where the
loaders are made, with one note per count, so a config written on a large machine runs unchanged on a small one.
"""

from __future__ import annotations

import os

from ..common.notes import note

_noted: set[tuple[int, int]] = set()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a batch scheduler's share, not the machine's count)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # no affinity masks (macOS)
        return os.cpu_count() or 1


def cap_workers(requested: int, option: str = "data.num_workers") -> int:
    """``requested`` loader processes, at most :func:`usable_cpus`; a note (once per count) says when it capped."""
    cpus = usable_cpus()
    if requested <= cpus:
        return requested
    if (requested, cpus) not in _noted:
        _noted.add((requested, cpus))
        note(f"{option}: {requested} worker processes capped at {cpus}, the CPUs this process may use")
    return cpus
