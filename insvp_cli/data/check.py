"""Verify a dataset before a long run: split sizes, classes, per-class counts, missing and unreadable files.

The core of ``insvp data check``. Every image file is checked to exist and to be readable: PIL parses its
header and runs ``verify()`` (fast; catches files that are not images or have broken headers); with
``full=True`` every image is decoded completely, which also catches truncated files, at the cost of a
full pass over the data. Files are probed by a small thread pool because the work is mostly waiting on
storage (network file systems especially).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..config.schema import DataConfig
from .base import IMAGE_READ_ERRORS, LabelledImages

SPLIT_NAMES = ("train", "val", "test")
ADVANCE_EVERY = 64  # progress-bar updates per file would cost more than probing a small file


@dataclass
class SplitReport:
    """What was found in one split.

    Attributes:
        name: ``train``, ``val`` or ``test``.
        size: number of samples.
        counts: samples per class (length = number of classes of the dataset).
        in_memory: the images are arrays in memory (no files to check).
        missing: paths that do not exist.
        unreadable: (path, reason) of files that exist but cannot be read as images.
    """

    name: str
    size: int
    counts: np.ndarray
    in_memory: bool
    missing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def classes_present(self) -> int:
        return int((self.counts > 0).sum())


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`.

    Attributes:
        dataset: the dataset name.
        classes: class names.
        splits: one :class:`SplitReport` per split, in train / val / test order.
    """

    dataset: str
    classes: list[str]
    splits: list[SplitReport]

    def problems(self) -> list[str]:
        """One line per problem that would spoil a run; empty when the dataset is fine."""
        lines = []
        for split in self.splits:
            if split.size == 0:
                lines.append(f"{split.name}: no samples")
            if split.missing:
                lines.append(f"{split.name}: {len(split.missing)} files missing")
            if split.unreadable:
                lines.append(f"{split.name}: {len(split.unreadable)} files unreadable")
        train = self.splits[0]
        if train.size and train.classes_present < len(self.classes):
            absent = [self.classes[i] for i in np.flatnonzero(train.counts == 0)]
            lines.append(f"train: {len(absent)} classes without samples ({', '.join(absent[:5])})")
        return lines

    @property
    def ok(self) -> bool:
        return not self.problems()


def probe_image(path: str, full: bool = False) -> str | None:
    """``None`` if ``path`` is a readable image, else why not (``"missing"`` for an absent file)."""
    if not os.path.isfile(path):
        return "missing"
    try:
        with Image.open(path) as img:
            if full:
                img.load()
            else:
                img.verify()
    except IMAGE_READ_ERRORS as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def count_files(splits: Sequence[LabelledImages]) -> int:
    """How many files :func:`check_dataset` will probe (for a progress bar)."""
    return sum(len(files) for ds in splits if (files := ds.files()) is not None)


def check_dataset(
    splits: Sequence[LabelledImages],
    classes: list[str],
    cfg: DataConfig,
    *,
    full: bool = False,
    advance: Callable[[int], None] | None = None,
    threads: int = 8,
) -> CheckReport:
    """Check the (train, val, test) datasets of :func:`insvp_cli.data.load_splits`.

    Args:
        splits: the train, val and test datasets.
        classes: the class names.
        cfg: the ``data`` config that produced them (for the dataset name).
        full: decode every image completely instead of only verifying it.
        advance: called with the number of files probed since the last call (a progress bar).
        threads: probing threads.
    """
    reports = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for name, ds in zip(SPLIT_NAMES, splits, strict=True):
            counts = np.bincount(ds.labels, minlength=len(classes))
            files = ds.files()
            report = SplitReport(name, len(ds), counts, in_memory=files is None)
            verdicts = pool.map(lambda p: probe_image(p, full), files or [])
            for done, (path, verdict) in enumerate(zip(files or [], verdicts, strict=True), start=1):
                if verdict == "missing":
                    report.missing.append(path)
                elif verdict is not None:
                    report.unreadable.append((path, verdict))
                if advance is not None and (done % ADVANCE_EVERY == 0 or done == len(files)):
                    advance(done % ADVANCE_EVERY or ADVANCE_EVERY)
            reports.append(report)
    return CheckReport(cfg.name, classes, reports)
