"""The image files named on a command line (files, folders walked recursively, glob patterns), found without torch.

``insvp predict`` and ``insvp gradcam`` find their inputs here before any model is loaded, so a path that does not
exist or a pattern that matches nothing is answered at once. The paths are held once, compactly, in an
:class:`InputFiles`, which forked loader workers share without copying.
"""

from __future__ import annotations

import glob
import os
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..common.errors import UsageError
from ..data.base import BadImage


class InputFiles:
    """The files named by a list of inputs, in order, stored as one byte buffer plus end offsets.

    A list of ``str`` costs about 50 bytes of object header per path, and forked DataLoader workers copy
    the pages of any Python object they touch (reference counts); one ``bytearray`` and one ``array``
    are two objects whatever the number of files, so the workers share them as they are.

    Attributes:
        unreadable: folders that could not be listed while walking, as :class:`BadImage` (path, reason).
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("q")
        self.unreadable: list[BadImage] = []

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> str:
        i = range(len(self))[i]  # negative indices count from the end; out of range raises IndexError
        start = self._ends[i - 1] if i > 0 else 0
        return os.fsdecode(bytes(self._data[start : self._ends[i]]))

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def append(self, path: str) -> None:
        self._data += os.fsencode(path)
        self._ends.append(len(self._data))

    @classmethod
    def find(cls, inputs: Sequence[str | Path], exclude: str | Path | None = None) -> InputFiles:
        """Expand files, folders (recursively) and glob patterns, in the order given.

        A file named twice (directly and through its folder, say) is listed twice. ``exclude`` (the output
        file) is left out of folders, so a second run into the same folder does not read the first's rows.

        Raises:
            UsageError: an input that does not exist, a pattern that matches no file, or no file at all.
        """
        files = cls()
        skip = os.path.abspath(exclude) if exclude is not None else None
        for spec in map(str, inputs):
            if os.path.isdir(spec):
                for path in _walk(spec, files.unreadable):
                    if skip is None or os.path.abspath(path) != skip:
                        files.append(path)
            elif os.path.isfile(spec):
                files.append(spec)
            elif any(c in spec for c in "*?["):
                # a pattern's matches are sorted, so they are held twice for that moment; folders never are
                matches = sorted(p for p in glob.iglob(spec, recursive=True) if os.path.isfile(p))
                if not matches:
                    raise UsageError(f"input pattern {spec!r} matches no file")
                for path in matches:
                    files.append(path)
            else:
                raise UsageError(f"input {spec} does not exist (give image files, folders or quoted glob patterns)")
        if not files:
            where = "; ".join(f"{b.path}: {b.reason}" for b in files.unreadable[:3])
            raise UsageError(f"no files found in {' '.join(map(str, inputs))}" + (f" (unreadable: {where})" if where
                                                                                    else ""))
        return files


def _walk(folder: str, unreadable: list[BadImage]) -> Iterator[str]:
    """Regular files under ``folder``, depth first, each folder's entries sorted by name, hidden entries skipped.

    Symbolic links to files are followed, links to folders are not (no cycles). A folder that cannot be
    listed is recorded in ``unreadable``. Only one folder's entries are held at a time.
    """
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as exc:
        unreadable.append(BadImage(folder, f"{type(exc).__name__}: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, unreadable)
        elif entry.is_file():
            yield entry.path
