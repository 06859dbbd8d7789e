"""Faults of the machine, injected into the installed ``insvp`` through a ``sitecustomize`` module on its path.

``fault_env(folder, **faults)`` returns the environment of a process that meets them when it writes a file through
``os.fdopen`` (every atomic write of insvp): ``INSVP_TEST_FULL_DISK`` fails every binary write with ENOSPC, as a full
disk does; ``INSVP_TEST_KILL_WRITING=best.pt`` kills the process by SIGKILL in the middle of writing the temp file of
``best.pt`` (part of it written), as a power cut or the OOM killer would.
"""

from __future__ import annotations

import os
from pathlib import Path

SITECUSTOMIZE = '''
import errno, io, os, signal

_fdopen = os.fdopen


class _Full(io.FileIO):
    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _Dying(io.FileIO):
    def write(self, data):
        super().write(bytes(data)[: max(len(data) // 2, 1)])
        os.kill(os.getpid(), signal.SIGKILL)


def _faulty_fdopen(fd, mode="r", *args, **kwargs):
    if "w" in mode and "b" in mode:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if os.environ.get("INSVP_TEST_FULL_DISK"):
            return io.BufferedWriter(_Full(fd, "w"))
        target = os.environ.get("INSVP_TEST_KILL_WRITING")
        if target and name.startswith(f".{target}."):
            return io.BufferedWriter(_Dying(fd, "w"))
    return _fdopen(fd, mode, *args, **kwargs)


os.fdopen = _faulty_fdopen
'''


def fault_env(folder: Path, **faults: str) -> dict[str, str]:
    """The environment of an ``insvp`` process meeting ``faults`` (names above); ``folder`` gets the module."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(folder), **faults}
