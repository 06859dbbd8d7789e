"""Extracting tar and zip archives so that nothing can land outside the target folder.

Every member name is checked before anything is written: an absolute path, a ``..`` component, a symbolic or hard
link that points outside the target, or a device file refuses the whole archive (:class:`UnsafeArchive`, naming the
member). Tar members are then extracted with the standard library's ``data`` filter as a second guard. The caller
extracts into a temporary folder and renames it into place, so a refused or interrupted archive leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath


class UnsafeArchive(Exception):
    """An archive member that would be written, or would point, outside the target folder."""


def _relative(name: str, strip: str, archive: Path) -> str | None:
    """The path of member ``name`` under the target (``None``: outside ``strip``, not extracted).

    Raises:
        UnsafeArchive: an absolute name or one with a ``..`` component, wherever it is in the archive.
    """
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith("\\") or (len(name) > 1 and name[1] == ":") or ".." in pure.parts:
        raise UnsafeArchive(f"{archive.name}: member {name!r} would be written outside the dataset folder; "
                            "the archive is refused")
    if strip and not name.startswith(strip):
        return None
    rel = name[len(strip):].strip("/")
    return rel or None


def _inside(dest: Path, path: str) -> bool:
    """Whether ``path`` (relative to ``dest`` or absolute) stays inside ``dest`` once normalised."""
    full = os.path.normpath(os.path.join(dest, path))
    return full == str(dest) or full.startswith(str(dest) + os.sep)


def _check_link(dest: Path, rel: str, target: str, archive: Path, member: str) -> None:
    # a symbolic link's target is relative to the link's folder
    if os.path.isabs(target) or not _inside(dest, os.path.join(os.path.dirname(rel), target)):
        raise UnsafeArchive(f"{archive.name}: member {member!r} links to {target!r}, outside the dataset folder; "
                            "the archive is refused")


def extract(archive: Path, dest: Path, strip: str = "", progress: Callable[[int], None] | None = None) -> int:
    """Extract the members of ``archive`` (tar, gzip/bzip2/xz tar, zip) under ``strip`` into ``dest``, without it.

    Args:
        archive: the archive file.
        dest: the target folder (created).
        strip: only members under this prefix are extracted, the prefix removed (``""``: every member).
        progress: called with the bytes of the archive read so far.

    Returns:
        The number of files written.

    Raises:
        UnsafeArchive: a member with an absolute path, ``..``, a link outside ``dest`` or a device file.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest, strip, progress)
    return _extract_tar(archive, dest, strip, progress)


def _extract_tar(archive: Path, dest: Path, strip: str, progress: Callable[[int], None] | None) -> int:
    written, folders = 0, {dest}
    with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
        for member in tar:  # streamed: a .tar.gz is read once, front to back
            rel = _relative(member.name, strip, archive)
            if member.issym():
                if rel is not None:
                    _check_link(dest, rel, member.linkname, archive, member.name)
            elif member.islnk():
                target = _relative(member.linkname, strip, archive)
                if rel is not None and target is None:
                    raise UnsafeArchive(f"{archive.name}: member {member.name!r} links to {member.linkname!r}, "
                                        "outside the dataset folder; the archive is refused")
            elif not (member.isfile() or member.isdir()):
                raise UnsafeArchive(f"{archive.name}: member {member.name!r} is a device or pipe; the archive is "
                                    "refused")
            if rel is not None:
                written += _write_member(tar, member, dest / rel, dest, strip, folders)
            if progress is not None:
                progress(raw.tell())
    return written


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, dest: Path, strip: str,
                  folders: set[Path]) -> int:
    """Write one checked member: files and folders without the archive's owners, modes and times (plain files
    for a dataset), links as links. Returns 1 for a file written."""
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        folders.add(target)
        return 0
    if target.parent not in folders:  # one mkdir per folder, not per file: archives hold thousands per folder
        target.parent.mkdir(parents=True, exist_ok=True)
        folders.add(target.parent)
    if member.issym():
        os.symlink(member.linkname, target)
    elif member.islnk():
        os.link(dest / member.linkname[len(strip):].strip("/"), target)
    else:
        with tar.extractfile(member) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    return 1


def _extract_zip(archive: Path, dest: Path, strip: str, progress: Callable[[int], None] | None) -> int:
    written = done = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            rel = _relative(info.filename, strip, archive)
            done += info.compress_size
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                if rel is not None:
                    _check_link(dest, rel, zf.read(info).decode("utf-8", "replace"), archive, info.filename)
                    os.symlink(zf.read(info).decode(), dest / rel)
            elif rel is not None:
                target = dest / rel
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    written += 1
            if progress is not None:
                progress(done)
    return written
