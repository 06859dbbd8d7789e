"""What ``insvp serve`` serves and how: task names and checkpoints, network and batching options.

Torch-free, so that the command checks every argument (and that the checkpoints exist) in a fraction of a second,
before it imports torch or binds a port.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..common.errors import UsageError
from ..runs.folder import RunFolder, checkpoint_file

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
TOKEN_ENV = "INSVP_SERVE_TOKEN"
SERVE_EXTRA = 'pip install "insvp[serve]"'
SERVE_MODULES = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}  # module: package


@dataclass(frozen=True)
class TaskSpec:
    """One task to serve: its name in the URLs and its checkpoint file."""

    name: str
    checkpoint: Path


def task_specs(args: list[str]) -> list[TaskSpec]:
    """``[NAME=]CKPT`` arguments as tasks with unique names.

    A name given with ``NAME=`` is kept; otherwise it comes from the run folder (``runs/svhn-vpt`` and
    ``runs/svhn-vpt/best.pt`` give ``svhn-vpt``, ``runs/svhn-vpt/last.pt`` gives ``svhn-vpt-last``) or the file
    name, with characters other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``-``; a derived name that
    is already taken gets ``-2``, ``-3``, ...

    Raises:
        UsageError: no argument, a checkpoint that does not exist, a bad or repeated ``NAME=``.
    """
    if not args:
        raise UsageError("name at least one checkpoint or run folder to serve")
    given: list[tuple[str | None, Path]] = []
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep or Path(arg).exists():  # a path that holds "=" is still a path
            name, path = None, arg
        elif not NAME.fullmatch(name):
            raise UsageError(f"task name {name!r} in {arg!r}: use letters, digits, '.', '_' and '-' (starting with a "
                             f"letter or digit)")
        given.append((name, checkpoint_file(path)))
    explicit = [n for n, _ in given if n is not None]
    repeated = sorted({n for n in explicit if explicit.count(n) > 1})
    if repeated:
        raise UsageError(f"task name {repeated[0]!r} is given twice; every task needs its own name")
    taken, specs = set(explicit), []
    for name, path in given:
        if name is None:
            name = base = _derived_name(path)
            n = 1
            while name in taken:
                n += 1
                name = f"{base}-{n}"
            taken.add(name)
        specs.append(TaskSpec(name, path))
    return specs


def _derived_name(checkpoint: Path) -> str:
    run = checkpoint.resolve().parent.name
    stem = {RunFolder.BEST: run, RunFolder.LAST: f"{run}-last"}.get(checkpoint.name, checkpoint.stem)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).lstrip("._-") or "task"


@dataclass(frozen=True)
class ServeSettings:
    """How the server runs; :meth:`check` validates every value before any work starts.

    Attributes:
        host: the address to bind (loopback by default: nothing outside this machine reaches the server).
        port: the TCP port; 0 lets the system choose a free one.
        token: the bearer token every route but ``/health`` requires; ``None`` or empty: none.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, for every task.
        max_batch: images per forward; concurrent requests to one task are merged up to this (1: never merged).
        batch_wait_ms: how long the first image of a batch may wait for others to join it.
        max_upload_mb: the largest request body accepted, in MiB (413 beyond).
        drain_timeout: seconds that requests in flight get to finish after SIGTERM.
        access_log: log one line per request.
        overrides: ``--set`` values applied to every checkpoint's config (e.g. ``backbone.weights=PATH``).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    device: str = "auto"
    max_batch: int = 32
    batch_wait_ms: float = 5.0
    max_upload_mb: float = 10.0
    drain_timeout: float = 30.0
    access_log: bool = False
    overrides: tuple[str, ...] = field(default_factory=tuple)

    def check(self) -> ServeSettings:
        """``self``, once every value is valid.

        Raises:
            UsageError: a port out of range, a batch size below 1, a negative wait, a non-positive upload limit or
                drain timeout; the message names the option.
        """
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port {self.port}: give 0..65535 (0: any free port)")
        if self.max_batch < 1:
            raise UsageError(f"--max-batch {self.max_batch}: give at least 1 (1: requests are never merged)")
        if self.batch_wait_ms < 0:
            raise UsageError(f"--batch-wait {self.batch_wait_ms:g}: give a number of milliseconds >= 0")
        if self.max_upload_mb <= 0:
            raise UsageError(f"--max-upload {self.max_upload_mb:g}: give a number of MiB > 0")
        if self.drain_timeout <= 0:
            raise UsageError(f"--drain-timeout {self.drain_timeout:g}: give a number of seconds > 0")
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def loopback(self) -> bool:
        """Whether ``host`` is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def check_serve_extra() -> None:
    """The optional packages ``insvp serve`` needs are importable.

    Raises:
        UsageError: one is missing; the message names it and the extra to install.
    """
    for module, package in SERVE_MODULES.items():
        try:
            __import__(module)
        except ImportError:
            raise UsageError(f"insvp serve needs {package}, which is not installed: {SERVE_EXTRA}") from None
