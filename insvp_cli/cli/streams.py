"""What the command line does with its environment: the terminal streams and the libraries' own messages.

- Library warnings (torch's, matplotlib's, a DataLoader's, pytorch-grad-cam's) and library log records are not
  shown: they speak of the libraries' internals, in several lines each, where the user was promised one line
  about their own input. ``insvp --debug`` shows them again. insvp's own notes and warnings (a worker count capped at
  the machine's CPUs, a damaged summary skipped, ...: :mod:`insvp_cli.common.notes`) are printed as one ``note:`` or
  ``warning:`` line each.
- A closed stdout (``insvp ... >&-``) is refused before any work: nothing could be printed (exit 1).
- A stdout whose reader went away (``insvp ... | head``: a broken pipe) ends the command silently with exit 0, as
  Unix tools do; any other failure to write stdout (a full disk behind ``> FILE``) is an error naming stdout
  (exit 1). Either way the unwritten rest is discarded, so the interpreter does not report it again at exit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator

from ..common.notes import LOGGER


class _Notes(logging.Handler):
    def __init__(self, say: Callable[[str, str], None]):
        super().__init__(logging.INFO)
        self.say = say

    def emit(self, record: logging.LogRecord) -> None:
        label = "note:" if record.levelno < logging.WARNING else "warning:"
        self.say(" ".join(record.getMessage().split()), label)


@contextlib.contextmanager
def quiet_libraries(say: Callable[[str, str], None]) -> Iterator[None]:
    """Within the block: library warnings and log records are dropped, insvp's notes and warnings go to ``say`` (one
    line each, with its label: ``note:`` or ``warning:``).

    Everything is put back afterwards (the command line also runs inside other programs: tests, notebooks).
    """
    root, ours = logging.getLogger(), LOGGER
    saved = root.level, ours.level, ours.propagate
    handler = _Notes(say)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.CRITICAL + 1)
        ours.setLevel(logging.INFO)
        ours.propagate = False
        ours.addHandler(handler)
        try:
            yield
        finally:
            ours.removeHandler(handler)
            root.setLevel(saved[0])
            ours.setLevel(saved[1])
            ours.propagate = saved[2]


def show_library_messages() -> None:
    """``--debug``: library warnings and log records are shown again (inside :func:`quiet_libraries`' block)."""
    warnings.simplefilter("default")
    logging.getLogger().setLevel(logging.WARNING)


STDOUT = "stdout"  # the file name of an OSError raised by a write to stdout


class _NamedStdout:
    """``sys.stdout`` whose write errors name it: an ``OSError`` of a write carries no file name, and a full disk
    behind ``> FILE`` must read as that, not as some file of the run."""

    def __init__(self, stream):
        self._stream = stream

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def write(self, text):
        return self._named(self._stream.write, text)

    def flush(self) -> None:
        self._named(self._stream.flush)

    @staticmethod
    def _named(call, *args):
        try:
            return call(*args)
        except OSError as exc:
            exc.filename = exc.filename or STDOUT
            raise


@contextlib.contextmanager
def named_stdout() -> Iterator[None]:
    """Within the block, write errors of ``sys.stdout`` name it (:data:`STDOUT`); it is put back afterwards."""
    saved = sys.stdout
    sys.stdout = _NamedStdout(saved)
    try:
        yield
    finally:
        sys.stdout = saved


def stdout_closed() -> bool:
    """The process was started with its stdout closed (Python then has no ``sys.stdout``)."""
    return sys.stdout is None


def discard_stdout() -> None:
    """Point stdout at ``/dev/null``, so that what it still holds is dropped quietly at exit."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)
