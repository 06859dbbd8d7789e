"""``insvp data prepare``: every file fetched (or found with ``--from``), verified, extracted into a temporary folder
beside the dataset folder, checked, then renamed into place.

Layout under ``--root``: one dataset folder per source (``cifar10/``, ``cub/``, ``vtab-1k/dtd/``: the recipes'
``data.root`` below ``data/``), each with a ``.insvp-prepared.json`` written last, and ``downloads/`` with the
verified files, the partial ones (``NAME.part``) and the locks. Workers of a cluster may share a root: one lock per
dataset and one per file make each dataset prepared once and each file downloaded once; the others wait and reuse
them. A dataset folder appears only complete (the rename is atomic); an interrupted run leaves a partial download,
which the next run resumes, and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from filelock import FileLock, Timeout
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ...common.atomic import atomic_write_text
from ...common.errors import UsageError
from ...config.schema import DataConfig
from ..check import check_dataset, count_files
from ..splits import load_splits
from . import download
from .extract import UnsafeArchive, extract
from .sources import Place, Remote, Source, expand
from .verify import VerifyError, verify

MARKER = ".insvp-prepared.json"
DOWNLOADS = "downloads"
PARTIAL = ".partial-"  # a dataset folder being built: .<folder>.partial-<pid> beside it


class PrepareError(Exception):
    """One dataset could not be prepared (a download, a checksum, an archive, the check); one line says why."""


@dataclass(frozen=True)
class Options:
    """How to prepare (the command's options).

    Attributes:
        root: the folder of the dataset folders.
        from_dir: a folder of files downloaded by hand, found by name (``None``: none).
        mirror: a base URL serving every file by name, used instead of the sources' URLs (``None``: theirs).
        pinned: the user's own size and digest of some files (``--sources``), by file name.
        retries: attempts after a failed or dropped connection, with backoff.
    """

    root: Path
    from_dir: Path | None = None
    mirror: str | None = None
    pinned: dict[str, Remote] = field(default_factory=dict)
    retries: int = 5

    def remote(self, remote: Remote) -> Remote:
        """``remote`` with the user's pinned values and the mirror's URL."""
        remote = self.pinned.get(remote.name, remote)
        if self.mirror:
            return Remote(remote.name, (f"{self.mirror.rstrip('/')}/{remote.name}",), remote.size, remote.digest,
                          remote.checksum_from)
        return remote

    def downloads(self) -> Path:
        return self.root / DOWNLOADS


@dataclass(frozen=True)
class Planned:
    """What prepare will do for one file: ``state`` is ``prepared`` (its dataset is there), ``downloaded``,
    ``from`` (found in ``--from``), ``download`` or ``by hand`` (no URL: the source's manual note applies)."""

    source: Source
    remote: Remote
    state: str


def plan(names: list[str], options: Options) -> list[Planned]:
    """Check the request before any work and say, per file, where it will come from.

    Raises:
        UsageError: an unknown name, a missing ``--from`` folder, or a dataset folder that holds other files.
    """
    if options.from_dir is not None and not options.from_dir.is_dir():
        raise UsageError(f"--from: {options.from_dir} is not a folder")
    rows = []
    for source in expand(names):
        folder = options.root / source.folder
        done = (folder / MARKER).is_file()
        if not done and folder.is_dir() and any(folder.iterdir()):
            raise UsageError(f"{source.name}: {folder} already holds files that insvp data prepare did not write; "
                             "move them away, or check them with: insvp data check "
                             f"{source.dataset} --root {folder}")
        for remote in map(options.remote, source.files):
            if done:
                state = "prepared"
            elif (options.downloads() / remote.name).is_file():
                state = "downloaded"
            elif options.from_dir is not None and (options.from_dir / remote.name).is_file():
                state = "from"
            else:
                state = "download" if remote.urls else "by hand"
            rows.append(Planned(source, remote, state))
    return rows


class Display:
    """One line per step and one transfer bar per file on ``console``."""

    def __init__(self, console: Console):
        self.console = console

    def say(self, line: str) -> None:
        self.console.print(line, highlight=False, soft_wrap=True)

    @contextmanager
    def bar(self, what: str, total: int | None, unit: str = "bytes") -> Iterator:
        """A bar of bytes (or of ``unit="files"``); yields ``update(completed, total=None)``. Logs (not a terminal)
        get the lines of :meth:`say` only."""
        if not self.console.is_terminal:
            yield lambda completed, new_total=None: None
            return
        counts = (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
        columns = (TextColumn("{task.description}"), BarColumn(), *counts, TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task(what, total=total)

            def update(completed: int, new_total: int | None = None) -> None:
                progress.update(task, completed=completed, **({"total": new_total} if new_total else {}))

            yield update


def prepare(names: list[str], options: Options, display: Display) -> list[str]:
    """Prepare every dataset of ``names`` (names and groups) under ``options.root``.

    A dataset that fails does not stop the others; Ctrl-C stops everything (the partial download stays for the next
    run, the partial dataset folder is removed).

    Returns:
        One line per dataset that failed (empty: all ready).
    """
    rows = plan(names, options)
    failed = []
    for source in dict.fromkeys(row.source for row in rows):
        try:
            _prepare_one(source, options, display)
        except PrepareError as exc:
            failed.append(f"{source.name}: {exc}")
            display.say(f"[red]{source.name}: failed[/]: {exc}")
    return failed


@contextmanager
def _locked(path: Path, what: str, display: Display) -> Iterator[None]:
    """Hold the lock file ``path``; say so once when another process holds it and wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        display.say(f"{what}: another process holds {path}; waiting for it")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _prepare_one(source: Source, options: Options, display: Display) -> None:
    folder = options.root / source.folder
    if (folder / MARKER).is_file():
        display.say(f"{source.name}: already prepared in {folder}")
        return
    lock = options.downloads() / ".locks" / f"{source.folder.replace('/', '-')}.lock"
    with _locked(lock, source.name, display):
        if (folder / MARKER).is_file():  # another worker finished it while this one waited
            display.say(f"{source.name}: prepared by another process in {folder}")
            return
        for stale in folder.parent.glob(f".{folder.name}{PARTIAL}*"):  # left by a killed run; the lock is ours
            shutil.rmtree(stale, ignore_errors=True)
        files = {remote.name: _acquire(source, options.remote(remote), options, display) for remote in source.files}
        staging = folder.parent / f".{folder.name}{PARTIAL}{os.getpid()}"
        try:
            images = _build(source, files, staging, display)
            atomic_write_text(json.dumps({"dataset": source.name, "insvp": version("insvp"), "images": images,
                                          "prepared": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                          "files": {n: options.remote(source.file(n)).digest for n in files}},
                                         indent=1) + "\n", staging / MARKER)
            if folder.is_dir():
                folder.rmdir()  # empty (plan() refused a folder with files); the rename needs it gone
            os.rename(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    display.say(f"[green]{source.name}: ready[/] in {folder} ({images:,} images; insvp data check passes)")


def _acquire(source: Source, remote: Remote, options: Options, display: Display) -> Path:
    """The verified local file of ``remote``: already downloaded, found in ``--from``, or downloaded now."""
    path = options.downloads() / remote.name
    with _locked(path.with_name(f".{remote.name}.lock"), remote.name, display):
        if path.is_file():
            try:
                display.say(f"{source.name}: {remote.name} already downloaded ({_verify(path, remote, display)})")
                return path
            except VerifyError as exc:
                display.say(f"{source.name}: {exc}; downloading it again")
                path.unlink()
        if options.from_dir is not None and (options.from_dir / remote.name).is_file():
            found = options.from_dir / remote.name
            try:
                display.say(f"{source.name}: {remote.name} from {options.from_dir} ({_verify(found, remote, display)})")
            except VerifyError as exc:
                raise PrepareError(f"checksum mismatch: {exc}") from None
            return found
        if not remote.urls:
            raise PrepareError(f"{remote.name} has no public download: {source.manual}")
        part = download.part_of(path)
        with display.bar(f"{source.name}: {remote.name}", remote.size) as update:
            try:
                url = download.fetch(remote.urls, path, size=remote.size, retries=options.retries,
                                     http=download.session(options.retries), progress=update)
            except download.DownloadError as exc:
                hand = f"; or: {source.manual}" if source.manual else ""
                raise PrepareError(f"cannot download {remote.name} ({exc}); without network, download it "
                                   f"elsewhere and pass its folder with --from DIR{hand}") from None
        try:
            checked = _verify(part, remote, display)
        except VerifyError as exc:
            part.unlink()  # a wrong file is never resumed: the next run downloads it anew
            raise PrepareError(f"checksum mismatch: {exc}; the file was deleted") from None
        os.replace(part, path)
        display.say(f"{source.name}: {remote.name} downloaded from {url} ({checked})")
        return path


def _verify(path: Path, remote: Remote, display: Display) -> str:
    with display.bar(f"verifying {remote.name}", path.stat().st_size) as update:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            update(done[0])

        return verify(path, remote, advance)


def _build(source: Source, files: dict[str, Path], staging: Path, display: Display) -> int:
    """Extract and place ``files`` into ``staging`` and check the result; returns the number of images."""
    staging.mkdir(parents=True)
    for step in source.steps:
        target = staging / step.into
        if isinstance(step, Place):
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files[step.file], target / step.file)
            continue
        archive = files[step.file]
        with display.bar(f"{source.name}: extracting {step.file}", archive.stat().st_size) as update:
            try:
                extract(archive, target, step.strip, update)
            except UnsafeArchive as exc:
                raise PrepareError(str(exc)) from None
            except (OSError, EOFError, ValueError) as exc:  # tarfile / zipfile errors of a damaged archive
                raise PrepareError(f"{step.file} cannot be extracted ({type(exc).__name__}: {exc})") from None
    return _check(source, staging, display)


def _check(source: Source, staging: Path, display: Display) -> int:
    """``insvp data check`` of the extracted folder plus the source's own counts; returns the number of images."""
    problems = source.check(staging) if source.check is not None else []
    if problems:
        raise PrepareError(f"the extracted files are incomplete: {'; '.join(problems)}")
    try:
        splits = load_splits(DataConfig(name=source.dataset, root=str(staging)))
    except UsageError as exc:
        raise PrepareError(f"the extracted files do not read as {source.dataset}: {exc}") from None
    datasets = [splits.train, splits.val, splits.test]
    done = [0]
    with display.bar(f"{source.name}: checking images", count_files(datasets), "files") as update:
        def advance(n: int) -> None:
            done[0] += n
            update(done[0])

        report = check_dataset(datasets, splits.classes, DataConfig(name=source.dataset), advance=advance)
    if not report.ok:
        raise PrepareError(f"insvp data check fails on the extracted files: {'; '.join(report.problems())}")
    return sum(len(d) for d in datasets)
