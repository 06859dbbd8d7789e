"""What ``insvp data prepare`` fetches for each dataset: its files, where they come from, how they are verified.

Every dataset that a shipped recipe or a table of ``insvp reproduce`` uses has one :class:`Source`: its files
(:class:`Remote`: name, URLs, size, checksum and where that checksum is published), the steps that turn the files
into the layout ``insvp data list`` shows (:class:`Unpack`, :class:`Place`), its licence and, where no public
download is left, how to place the files by hand. The tables themselves live beside the readers of each family
(``torchvision_sets.py``, ``fgvc.py``, ``vtab.py`` in this package) and register here.

A file whose checksum nobody publishes has ``digest=None`` and says so in ``checksum_from``; it is then verified by
its size where that is known and by the dataset's counts after extraction (every listed image present).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...common.errors import UsageError
from ...common.registry import Registry

DIGESTS = ("sha256", "md5")  # the algorithms a digest may name, strongest first


@dataclass(frozen=True)
class Remote:
    """One file of a dataset as its distributors publish it.

    Attributes:
        name: the file name, on disk and in ``--from DIR`` / ``--mirror URL``.
        urls: direct download URLs, the primary first, then mirrors; empty where the file can only be fetched by hand.
        size: bytes, where published (``None``: unknown; progress and ``--dry-run`` then show it as unknown).
        digest: ``"sha256:<hex>"`` or ``"md5:<hex>"``; ``None``: no published checksum.
        checksum_from: where the digest and the size are published, or why there is none.
    """

    name: str
    urls: tuple[str, ...]
    size: int | None
    digest: str | None
    checksum_from: str

    def __post_init__(self) -> None:
        if self.digest is not None:
            algo, _, hexdigest = self.digest.partition(":")
            if algo not in DIGESTS or not hexdigest or any(c not in "0123456789abcdef" for c in hexdigest):
                raise ValueError(f"{self.name}: digest {self.digest!r} is not sha256:<hex> or md5:<hex>")


@dataclass(frozen=True)
class Unpack:
    """Extract archive ``file`` into ``into`` (a folder under the dataset folder).

    Attributes:
        file: a :attr:`Remote.name` of the source.
        into: the folder under the dataset folder that receives the members ("" for the dataset folder itself).
        strip: only the members under this prefix are extracted, without it (``"CUB_200_2011/"``).
    """

    file: str
    into: str = ""
    strip: str = ""


@dataclass(frozen=True)
class Place:
    """Copy file ``file`` as it is to ``into/<file>`` under the dataset folder."""

    file: str
    into: str = ""


@dataclass(frozen=True)
class Source:
    """How one dataset gets onto the disk.

    Attributes:
        name: what ``insvp data prepare`` takes (``cifar10``, ``cub``, ``vtab/dtd``).
        dataset: the registered ``data.name`` that reads the result.
        folder: the dataset folder under ``--root`` (the recipes' ``data.root`` below ``data/``).
        files: the files to fetch.
        steps: what to do with them, in order.
        homepage: the dataset's own page.
        licence: the terms of use, in a line.
        groups: the groups that include it (``hta``, ``fgvc``, ``vtab``; every source is in ``all``).
        manual: how to get the files by hand where no direct download is left ("" where there is one).
        check: extra checks of the extracted folder (VTAB-1k's per-task counts): returns one line per problem.
    """

    name: str
    dataset: str
    folder: str
    files: tuple[Remote, ...]
    steps: tuple[Unpack | Place, ...]
    homepage: str
    licence: str
    groups: tuple[str, ...]
    manual: str = ""
    check: Callable[[Path], list[str]] | None = None

    def __post_init__(self) -> None:
        names = {f.name for f in self.files}
        for step in self.steps:
            if step.file not in names:
                raise ValueError(f"{self.name}: step uses {step.file!r}, which is not one of its files")

    def file(self, name: str) -> Remote:
        return next(f for f in self.files if f.name == name)


def _import_tables() -> None:
    for table in ("fgvc", "torchvision_sets", "vtab"):
        importlib.import_module(f"{__package__}.{table}")


# the tables register their sources when the registry is first looked up
SOURCES: Registry[Source] = Registry("dataset to prepare", populate=_import_tables)
GROUPS = ("all", "hta", "fgvc", "vtab")


def register_source(source: Source) -> Source:
    """Add ``source`` to :data:`SOURCES`."""
    unknown = [g for g in source.groups if g not in GROUPS]
    if unknown:
        raise ValueError(f"{source.name}: unknown groups {unknown}; valid: {', '.join(GROUPS)}")
    return SOURCES.register(source.name, source)


def expand(names: list[str]) -> list[Source]:
    """The sources of ``names`` (dataset names and groups), in the given order, each once.

    Raises:
        UsageError: a name that is neither a source nor a group (the error lists both).
    """
    picked: dict[str, Source] = {}
    for name in names:
        if name in GROUPS:
            members = [s for s in SOURCES.names() if name == "all" or name in SOURCES.get(s).groups]
        elif name in SOURCES:
            members = [name]
        else:
            raise UsageError(f"unknown dataset {name!r}; valid: the groups {', '.join(GROUPS)} or "
                             f"{', '.join(SOURCES.names())}")
        picked.update((m, SOURCES.get(m)) for m in members)
    return list(picked.values())


def prepare_command(folders: list[str], root: Path) -> str:
    """The ``insvp data prepare`` command that makes the data ``folders`` (relative to ``root``) it has sources for."""
    by_folder = {SOURCES.get(n).folder: n for n in SOURCES.names()}
    names = [by_folder[f] for f in folders if f in by_folder]
    return f"insvp data prepare {' '.join(names)} --root {root}" if names else ""


def load_pinned(path: Path) -> dict[str, Remote]:
    """The user's own sizes and digests (``--sources FILE``): a YAML mapping ``FILE NAME: {size: N, sha256: HEX}``
    (or ``md5``), e.g. for a mirror that serves re-packed archives; each replaces the table's values of that file.

    Raises:
        UsageError: an unreadable file, an unknown file name, or an entry without ``sha256``/``md5``.
    """
    from ...common.yamlio import read_yaml

    known = {f.name: f for name in SOURCES.names() for f in SOURCES.get(name).files}
    try:
        entries = read_yaml(path)
    except UsageError as exc:
        raise UsageError(f"--sources: {exc}") from None
    if not isinstance(entries, dict):
        raise UsageError(f"--sources: {path} must map file names to {{size: N, sha256: HEX}}")
    pinned = {}
    for name, entry in entries.items():
        if name not in known:
            raise UsageError(f"--sources: {path}: unknown file {name!r}; the files are those of insvp data prepare "
                             "--dry-run all")
        algos = [a for a in DIGESTS if isinstance(entry, dict) and a in entry]
        size = entry.get("size") if isinstance(entry, dict) else None
        if len(algos) != 1 or not (size is None or (isinstance(size, int) and size >= 0)):
            raise UsageError(f"--sources: {path}: {name} needs one of sha256 or md5 (and optionally size: bytes)")
        try:
            pinned[name] = Remote(name, known[name].urls, size, f"{algos[0]}:{str(entry[algos[0]]).lower()}",
                                  f"pinned in {path}")
        except ValueError as exc:
            raise UsageError(f"--sources: {path}: {exc}") from None
    return pinned
