"""Atomic writes: a temp file in the same folder, fsynced, then ``os.replace`` over the target.

A process killed at any moment leaves either the previous file or the new one, never a torn one.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def _new_file_mode() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _new_file_mode()
TEMP_SUFFIX = ".tmp"


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path`` for writing; on a clean exit fsync it and rename it over ``path``.

    Whatever goes wrong inside the block (an error, Ctrl-C), the temp file is removed and ``path`` keeps
    its previous contents (or stays absent); a write error names ``path``, never the temp file. ``kwargs`` go to
    :func:`open` (e.g. ``newline=""`` for csv).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise _about(exc, path, None) from None
    try:
        # mkstemp's file is private (0600): give it the mode a plain open() would (the file's own, or the umask's)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else _NEW_FILE_MODE)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _about(exc, path, tmp) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _about(exc: OSError, path: Path, tmp: str | None) -> OSError:
    """``exc`` naming ``path``, the file the user asked for, instead of the hidden temp file ``tmp`` (or nothing); an
    error about another file (read inside the block) stays as it is."""
    if exc.errno is None or exc.filename not in (None, tmp):
        return exc
    return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


def stale_temp_files(folder: Path, names: Sequence[str]) -> list[Path]:
    """Temp files that :func:`atomic_open` left in ``folder`` for the files ``names`` when its process was killed
    (SIGKILL runs no cleanup): ``.<name>.<random>.tmp``. Only the caller knows that no writer is at work there."""
    return sorted(p for name in names for p in folder.glob(f".{glob.escape(name)}.*{TEMP_SUFFIX}") if p.is_file())


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    import torch

    with atomic_open(path, "wb") as f:
        sink = _KeepWriteError(f)
        try:
            torch.save(obj, sink)
        except RuntimeError:
            if sink.error is not None:  # torch reports a failed write as "[enforce fail at inline_container.cc]"
                raise sink.error from None
            raise


class _KeepWriteError:
    """A binary file that remembers the first ``OSError`` of a write (a full disk), which ``torch.save`` swallows."""

    def __init__(self, f: IO[bytes]):
        self.f, self.error = f, None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.f.flush()


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path,
                            metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` as a ``.safetensors`` file atomically."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata)
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)
