"""Small splits decoded and resized once, kept as uint8 tensors: an epoch then costs a crop, a flip and a
normalisation per image instead of a JPEG decode and a bicubic resize (about 5 ms per image per core at 224 px).

:class:`CacheBudget` decides which splits fit (``data.cache_gb``, shared by the splits of a run, counted per
process); :func:`cache_split` decodes a split through worker processes, once, and packs every image into one flat
buffer, which forked loader workers then share instead of copying. The cached dataset yields the same pixels as the
files (the transform's :meth:`~insvp_cli.data.transforms.Preprocess.resize` is exactly what is cached), so caching
changes speed, never results. Unreadable images stay :class:`~insvp_cli.data.base.BadImage` markers in the cache:
``on_bad_image: skip`` reports them every epoch as before, ``error`` stops at the first while caching.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import DataLoader

from ..runtime.cpus import loader_workers
from .base import BadImage, BadImageError, LabelledImages
from .transforms import Preprocess

if TYPE_CHECKING:
    from ..config.schema import DataConfig
    from .base import Splits

GIB = 2**30
# images decoded to estimate a split's size before caching it
_PROBES = 16


class CachedImages(LabelledImages):
    """A split's images after the resize, in memory: uint8 ``(3, h, w)`` each, packed in one flat buffer.

    Args:
        source: the dataset as read from disk (what :meth:`with_transform` falls back to for another resize).
        pixels: every image's bytes, one after another.
        shapes: ``(N, 3)``: each image's ``(3, h, w)``; a row of zeros for an unreadable image.
        bad: the unreadable images by position.
    """

    def __init__(self, source: LabelledImages, pixels: torch.Tensor, shapes: np.ndarray, bad: dict[int, BadImage]):
        super().__init__(source.labels, None, source.transform)
        self.source, self._pixels, self._shapes, self._bad = source, pixels, shapes, bad
        self._offsets = np.concatenate([[0], np.cumsum(shapes.prod(axis=1))])

    @property
    def nbytes(self) -> int:
        return self._pixels.numel()

    def _image(self, j: int) -> torch.Tensor | BadImage:
        if j in self._bad:
            return self._bad[j]
        # a view into the shared buffer: (3 h w,) -> (3, h, w)
        return self._pixels[self._offsets[j]:self._offsets[j + 1]].view(*self._shapes[j].tolist())

    def _load(self, j: int) -> tuple[Any, int] | BadImage:
        image = self._image(j)
        if isinstance(image, BadImage):
            return image
        return self.transform.finish(image), int(self._all_labels[j])

    def with_transform(self, transform: Callable | None) -> LabelledImages:
        """The same samples under ``transform``: from the cache when it resizes the same way, else from the files."""
        if isinstance(transform, Preprocess) and transform.resize_key == self.transform.resize_key:
            return self._view(self.indices, transform)
        return self.source.select(self.indices).with_transform(transform)

    def files(self) -> list[str] | None:
        paths = self.source.files()
        return None if paths is None else [paths[i] for i in self.indices]


class CacheBudget:
    """How many bytes of decoded images the splits of one run may keep (``data.cache_gb``), first come first served.

    Args:
        gib: the budget in GiB; 0 caches nothing.
    """

    def __init__(self, gib: float):
        self.left = int(gib * GIB)

    def fits(self, dataset: LabelledImages) -> bool:
        """Whether ``dataset`` (a split with a :class:`Preprocess`) is worth caching and fits what is left, judged
        from the resized size of a few of its images."""
        if not isinstance(dataset.transform, Preprocess) or isinstance(dataset, CachedImages) or not len(dataset):
            return False
        if self.left <= 0:
            return False
        probes = np.unique(np.linspace(0, len(dataset) - 1, min(_PROBES, len(dataset))).astype(np.int64))
        sizes = [image.numel() for image in (_resized(dataset, int(i)) for i in probes)
                 if not isinstance(image, BadImage)]
        return bool(sizes) and float(np.mean(sizes)) * len(dataset) <= self.left

    def take(self, cached: CachedImages) -> None:
        self.left -= cached.nbytes


def cache_split(dataset: LabelledImages, workers: int, on_bad_image: str,
                advance: Callable[[int], None] | None = None) -> CachedImages:
    """Decode and resize every image of ``dataset`` once (in ``workers`` processes) into a :class:`CachedImages`.

    Args:
        dataset: a split whose transform is a :class:`Preprocess`.
        workers: loader worker processes for the decoding (0: in this process).
        on_bad_image: ``error`` raises at the first unreadable image; ``skip`` keeps it as a marker.
        advance: told how many more images are done after each chunk.

    Raises:
        BadImageError: an unreadable image under ``on_bad_image: error``.
    """
    loader = DataLoader(_Resized(dataset), batch_size=64, num_workers=workers, collate_fn=_only)
    chunks: list[torch.Tensor] = []
    shapes = np.zeros((len(dataset), 3), dtype=np.int64)
    bad: dict[int, BadImage] = {}
    for positions, chunk_shapes, pixels, chunk_bad in loader:  # in position order
        shapes[positions] = chunk_shapes
        chunks.append(pixels)
        for position, image in chunk_bad.items():
            if on_bad_image == "error":
                raise BadImageError(image.path, image.reason)
            bad[position] = image
        if advance is not None:
            advance(len(positions))
    pixels = torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.uint8)
    return CachedImages(dataset, pixels, shapes, bad)


def cache_splits(splits: Splits, cfg: DataConfig, console: Console | None = None) -> Splits:
    """``splits`` with each split that fits ``cfg.cache_gb`` (train first: it is read every epoch) cached.

    Args:
        splits: the splits as built (val and test may be a rank's part).
        cfg: the ``data`` config (``cache_gb``, ``num_workers``, ``on_bad_image``).
        console: where a bar shows the decoding (on a terminal) and a line each cached split (``None``: nothing).
    """
    budget, cached = CacheBudget(cfg.cache_gb), {}
    for name in ("train", "val", "test"):
        dataset = getattr(splits, name)
        if budget.fits(dataset):
            start = time.perf_counter()
            with Progress(TextColumn(f"caching {name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, transient=True, disable=console is None or not console.is_terminal) as bar:
                task = bar.add_task(name, total=len(dataset))
                cached[name] = cache_split(dataset, loader_workers(cfg.num_workers), cfg.on_bad_image,
                                           lambda done, task=task: bar.update(task, advance=done))
            budget.take(cached[name])
            if console is not None:
                console.print(f"cached {name}: {len(dataset):,} images, {cached[name].nbytes / 2**20:,.1f} MiB decoded "
                              f"and resized in {time.perf_counter() - start:.1f} s", highlight=False)
    return dataclasses.replace(splits, **cached)


class _Resized:
    """``dataset``'s images resized, a chunk of positions at a time (what :func:`cache_split` reads in its workers):
    the chunk's readable images packed in one flat uint8 tensor (one shared-memory segment from a worker to the
    main process, not one per image), their shapes, and the unreadable ones by position."""

    def __init__(self, dataset: LabelledImages):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, positions: Sequence[int]) -> tuple[list[int], np.ndarray, torch.Tensor, dict]:
        shapes, pixels, bad = np.zeros((len(positions), 3), dtype=np.int64), [], {}
        for row, i in enumerate(positions):
            image = _resized(self.dataset, i)
            if isinstance(image, BadImage):
                bad[i] = image
            else:
                shapes[row] = image.shape
                pixels.append(image.flatten())
        return list(positions), shapes, torch.cat(pixels) if pixels else torch.zeros(0, dtype=torch.uint8), bad


def _resized(dataset: LabelledImages, i: int) -> torch.Tensor | BadImage:
    """Position ``i`` of ``dataset`` decoded and resized: uint8 ``(3, h, w)``, or why it cannot be read."""
    image = dataset._image(int(dataset.indices[i]))
    return image if isinstance(image, BadImage) else dataset.transform.resize(image)


def _only(chunks: list) -> Any:
    return chunks  # __getitems__ made the chunk itself
