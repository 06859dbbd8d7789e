"""Output paths checked before any work: every ``--out`` of the command line goes through here first.

A command that finds out at the end of an hour that it cannot write its result has wasted the hour; one that
writes ``figure.png`` when asked for ``figure`` or fails with the name of a hidden temporary file has misled. So
the checks that cost nothing run first: the path is not empty, its suffix is a format the writer supports, it
is not a folder where a file is meant (nor a file where a folder is), and the nearest existing folder at or above
it is a folder this process can create a file in (tried with an unnamed temporary file, removed at once; the rest
of the path is created by the writer). The messages name the path as the user gave it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError


def _writable(start: Path, path: Path, option: str) -> None:
    """The nearest existing folder at or above ``start`` is a folder this process may create entries in."""
    start = start.absolute()
    for folder in (start, *start.parents):
        if not folder.exists():
            continue
        if not folder.is_dir():
            raise UsageError(f"{option} {path}: {folder} is a file, not a folder")
        try:  # the one honest test: permissions, a read-only or special file system (and root) all answer it
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise UsageError(f"{option} {path}: cannot write into {folder} ({(exc.strerror or str(exc)).lower()})"
                             ) from None
        return


def _not_empty(path: str | Path, option: str, what: str) -> Path:
    if not str(path).strip():
        raise UsageError(f"{option} '': empty; give {what}")
    return Path(path).expanduser()


def check_output_file(path: str | Path, suffixes: Sequence[str], option: str = "--out") -> Path:
    """``path`` as a file this process can write, in one of the formats ``suffixes`` (``.csv``, ...).

    An existing regular file is replaced (atomically, by the writer); anything else there is refused.

    Raises:
        UsageError: an empty path, another suffix, a folder or a device at ``path``, or a parent that is a file or
            not writable. Nothing is created.
    """
    formats = " or ".join(filter(None, (", ".join(suffixes[:-1]), suffixes[-1])))
    path = _not_empty(path, option, f"a file name ending in {formats}")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name ending in {formats}, e.g. {path / 'out'}"
                         f"{suffixes[0]}")
    if path.suffix.lower() not in suffixes:
        got = f"its suffix {path.suffix!r}" if path.suffix else "it has no suffix"
        raise UsageError(f"{option} {path}: {got}; the formats written are {formats}")
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {path} is not a regular file (a device or a pipe); give a file path")
    _writable(path.parent, path, option)
    return path


def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a folder this process can create or write into (it may exist, or it is created later).

    Raises:
        UsageError: an empty path, a file at ``path``, or a parent that is a file or not writable.
    """
    path = _not_empty(path, option, "a folder")
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder; give a folder")
    _writable(path, path, option)
    return path
