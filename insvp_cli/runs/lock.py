"""A run folder's lock: one process trains in a folder at a time; a second one is refused at once."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..common.errors import RunInUse, UsageError

LOCK = ".lock"
LOCK_FILES = (LOCK, f"{LOCK}.owner")


class RunLock:
    """Holds ``run_dir/.lock`` while a process trains in the folder; a second process is refused at once.

    The lock is the operating system's (``filelock``: ``flock`` on POSIX), so it is released when the
    process dies, even by SIGKILL. ``.lock.owner`` tells a refused process who holds it.

    Args:
        run_dir: the run folder (created if absent).
        enabled: False on the processes of a ``torchrun`` group that do not write (rank > 0).
    """

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.run_dir = run_dir
        self.enabled = enabled
        self._lock = None
        self._created = False

    @property
    def owner_file(self) -> Path:
        return self.run_dir / f"{LOCK}.owner"

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        from filelock import FileLock, Timeout

        try:
            self._created = not self.run_dir.exists()
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the run folder {self.run_dir} ({exc.strerror})") from None
        self._lock = FileLock(self.run_dir / LOCK, timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            self._lock = None
            raise RunInUse(f"{self.run_dir} is in use: {self._holder()}; wait for it to finish or choose "
                           f"another folder") from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.owner_file.write_text(json.dumps(owner) + "\n")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock is None:
            return
        self.owner_file.unlink(missing_ok=True)
        self._lock.release()
        self._lock = None
        if self._created and all(p.name in LOCK_FILES for p in self.run_dir.iterdir()):
            # a run that failed before writing anything leaves no folder behind
            (self.run_dir / LOCK).unlink(missing_ok=True)
            self.run_dir.rmdir()

    @staticmethod
    def is_held(run_dir: Path) -> bool:
        """Whether another process holds the lock of ``run_dir`` now (a folder without a lock file is free)."""
        from filelock import FileLock, Timeout

        if not (run_dir / LOCK).is_file():
            return False
        probe = FileLock(run_dir / LOCK, timeout=0)
        try:
            probe.acquire()
        except Timeout:
            return True
        probe.release()
        return False

    def _holder(self) -> str:
        try:
            owner = json.loads(self.owner_file.read_text())
            return f"process {owner['pid']} on {owner['host']} trains in it since {owner['since']}"
        except (OSError, ValueError, KeyError):
            return "another process trains in it"
