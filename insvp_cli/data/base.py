"""Datasets as labelled images: files on disk or arrays in memory, the dataset registry, seeded splits.

Every dataset family (torchvision sets, VPT's FGVC splits, image folders, the offline digit sets) reads
its own on-disk format into the same two containers, :class:`ImageFiles` and :class:`ImageArrays`, so
transforms, class subsets, validation carving, bad-image handling and ``insvp data check`` are written
once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..common.errors import UsageError

# What PIL raises for a file it cannot read: missing (FileNotFoundError is an OSError), not an image
# (UnidentifiedImageError is an OSError), truncated (OSError), broken headers (SyntaxError, ValueError).
IMAGE_READ_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class BadImageError(UsageError):
    """An image file that cannot be read; ``path`` names it."""

    def __init__(self, path: str, reason: str):
        super().__init__(
            f"unreadable image {path}: {reason}; replace or delete it, or set data.on_bad_image=skip "
            "to drop unreadable images (their count is reported after each epoch)"
        )
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class BadImage:
    """Stands in for a sample whose file could not be read, on its way from a loader worker to the loader."""

    path: str
    reason: str


def read_rgb(path: str) -> Image.Image | BadImage:
    """The decoded RGB image at ``path``, or a :class:`BadImage` saying why it cannot be read (never raises)."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # convert() decodes the whole file, so truncation shows up here
    except IMAGE_READ_ERRORS as exc:
        return BadImage(path, f"{type(exc).__name__}: {exc}")


class LabelledImages:
    """A map-style dataset of ``(image, label)`` pairs over a selection of samples.

    Subclasses store every sample of a split once; ``indices`` selects the ones this object yields, so
    train and a carved validation set share storage but not samples.

    Args:
        labels: label of every stored sample (0..C-1).
        indices: the stored samples this dataset yields (default: all).
        transform: applied to the RGB PIL image (``None``: yield the PIL image).
    """

    def __init__(self, labels: Sequence[int], indices: Sequence[int] | None = None,
                 transform: Callable[[Image.Image], Any] | None = None):
        self._all_labels = np.asarray(labels, dtype=np.int64)
        self.indices = np.arange(len(self._all_labels)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.transform = transform

    @property
    def labels(self) -> np.ndarray:
        """Labels of the samples this dataset yields, in order."""
        return self._all_labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        """The ``i``-th sample; an unreadable file raises :class:`BadImageError` naming it."""
        sample = self._load(int(self.indices[i]))
        if isinstance(sample, BadImage):
            raise BadImageError(sample.path, sample.reason)
        return sample

    def __getitems__(self, batch: Sequence[int]) -> list[tuple[Any, int] | BadImage]:
        """A batch for the DataLoader, with a :class:`BadImage` in place of each unreadable file.

        The DataLoader calls this in its worker processes instead of ``__getitem__``; reporting a bad
        file as a value (not an exception) lets the loader in the main process raise a clean error or
        count it, whatever the number of workers.
        """
        return [self._load(int(self.indices[i])) for i in batch]

    def _load(self, j: int) -> tuple[Any, int] | BadImage:
        image = self._image(j)
        if isinstance(image, BadImage):
            return image
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self._all_labels[j])

    def _image(self, j: int) -> Image.Image | BadImage:
        raise NotImplementedError

    def select(self, indices: Sequence[int]) -> LabelledImages:
        """A dataset over the given positions of this one (same storage, same transform)."""
        return self._view(self.indices[np.asarray(indices, dtype=np.int64)], self.transform)

    def with_transform(self, transform: Callable[[Image.Image], Any] | None) -> LabelledImages:
        """The same samples with another transform."""
        return self._view(self.indices, transform)

    def relabel(self, mapping: np.ndarray) -> LabelledImages:
        """The same samples with label ``y`` replaced by ``mapping[y]``."""
        return self._view(self.indices, self.transform, labels=np.asarray(mapping, dtype=np.int64)[self._all_labels])

    def _view(self, indices: np.ndarray, transform: Callable | None, labels: np.ndarray | None = None
              ) -> LabelledImages:
        # a shallow copy shares the stored images / paths; only the selection, labels and transform differ
        view = copy.copy(self)
        view.indices, view.transform = indices, transform
        if labels is not None:
            view._all_labels = labels
        return view

    def files(self) -> list[str] | None:
        """Paths of the samples this dataset yields, or ``None`` for images held in memory."""
        return None


class ImageFiles(LabelledImages):
    """Images read from files on every access (PIL, converted to RGB).

    Args:
        paths: path of every stored sample.
        labels: label of every stored sample.
        indices: see :class:`LabelledImages`.
        transform: see :class:`LabelledImages`.
    """

    def __init__(self, paths: Sequence[str | Path], labels: Sequence[int], indices: Sequence[int] | None = None,
                 transform: Callable | None = None):
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        super().__init__(labels, indices, transform)
        # a fixed-width numpy string array rather than a list of Python objects: forked loader workers read
        # it without touching reference counts, so its pages stay shared instead of being copied per worker
        self._paths = np.asarray([str(p) for p in paths], dtype=str)

    def _image(self, j: int) -> Image.Image | BadImage:
        return read_rgb(str(self._paths[j]))

    def files(self) -> list[str]:
        return [str(p) for p in self._paths[self.indices]]


class ImageArrays(LabelledImages):
    """Images held in memory as one uint8 array: ``(N, H, W, 3)`` RGB or ``(N, H, W)`` grayscale.

    Grayscale images are expanded to 3 channels when read, so every dataset yields RGB.

    Args:
        images: the pixel array.
        labels: label of every stored sample.
        indices: see :class:`LabelledImages`.
        transform: see :class:`LabelledImages`.
    """

    def __init__(self, images: np.ndarray, labels: Sequence[int], indices: Sequence[int] | None = None,
                 transform: Callable | None = None):
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
            raise ValueError(f"expected uint8 (N, H, W[, 3]) images and N labels, got {images.dtype} "
                             f"{images.shape} and {len(labels)} labels")
        super().__init__(labels, indices, transform)
        self._images = images

    def _image(self, j: int) -> Image.Image:
        return Image.fromarray(self._images[j]).convert("RGB")


@dataclass
class Parts:
    """What a dataset family reads from disk, before class subsets, validation carving and transforms.

    Attributes:
        train: the official training split.
        val: the official validation split, or ``None`` to carve one from ``train``.
        test: the official test split.
        classes: class names; label ``i`` is ``classes[i]``.
    """

    train: LabelledImages
    val: LabelledImages | None
    test: LabelledImages
    classes: list[str]


def seeded_split(labels: np.ndarray, fraction: float, seed: int, stream: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split positions ``0..N-1`` into (kept, held out), holding out ``fraction * n_c`` (rounded half up) of each class.

    Stratified so small classes keep their share. Each class is shuffled by its own generator seeded
    with ``(seed, stream, label)``: a class's held-out samples do not depend on which other classes are
    present, so a ``data.classes`` subset holds out exactly the images the full dataset would.

    Args:
        labels: label of each position.
        fraction: share of each class to hold out.
        seed: ``data.seed``.
        stream: distinguishes successive splits under one seed (test carving, then validation carving).

    Returns:
        Two sorted, disjoint position arrays that together cover every sample.
    """
    kept, held = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        order = np.random.default_rng([seed, stream, int(label)]).permutation(members)
        n_held = int(fraction * len(members) + 0.5)  # half up: round() would hold out 0 of 5 at 0.1
        held.append(order[:n_held])
        kept.append(order[n_held:])
    if not kept:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


@dataclass
class Splits:
    """The train / val / test datasets of a run and the names of their labels.

    Attributes:
        name: the dataset's registered name.
        train: training samples (train transform).
        val: validation samples (eval transform).
        test: test samples (eval transform).
        classes: ``classes[label]`` is the name of ``label``; ``len(classes)`` is the number of classes.
    """

    name: str
    train: LabelledImages
    val: LabelledImages
    test: LabelledImages
    classes: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.classes)
