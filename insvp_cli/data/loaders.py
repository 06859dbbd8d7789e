"""DataLoaders that never let an unreadable image pass silently, with or without worker processes.

Datasets hand the loader a :class:`~insvp_cli.data.base.BadImage` marker instead of raising inside a
worker (see ``LabelledImages.__getitems__``); :func:`collate` moves the markers' paths out of the batch,
and :class:`ImageLoader` — in the main process — either raises :class:`BadImageError` naming the file
(``on_bad_image: error``) or drops the sample and remembers its path (``skip``) until
:meth:`ImageLoader.pop_bad_images` is called, once per epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.data._utils.collate import default_collate

from ..config.schema import DataConfig
from ..runtime.cpus import cap_workers
from .base import BadImage, BadImageError, LabelledImages

if TYPE_CHECKING:
    from .base import Splits


class Batch:
    """A collated batch plus the samples that could not be read (worker -> main process).

    Defines ``pin_memory`` so the DataLoader's pinning thread keeps the bad-image list.
    """

    def __init__(self, images: torch.Tensor | None, labels: torch.Tensor | None, bad: list[BadImage]):
        self.images, self.labels, self.bad = images, labels, bad

    def pin_memory(self) -> Batch:
        if self.images is None:
            return self
        return Batch(self.images.pin_memory(), self.labels.pin_memory(), self.bad)


def collate(samples: Sequence[tuple[Any, int] | BadImage]) -> Batch:
    """Stack the readable samples; set the unreadable ones aside by path."""
    good = [s for s in samples if not isinstance(s, BadImage)]
    bad = [s for s in samples if isinstance(s, BadImage)]
    if not good:
        return Batch(None, None, bad)
    images, labels = default_collate(good)
    return Batch(images, labels, bad)


class ImageLoader(DataLoader):
    """A DataLoader yielding ``(images, labels)`` that reports unreadable images.

    Args:
        dataset: a :class:`LabelledImages` dataset.
        on_bad_image: ``error`` raises :class:`BadImageError` at the first unreadable file; ``skip`` drops
            it (a batch may come out smaller; a batch with nothing readable is not yielded) and records
            its path for :meth:`pop_bad_images`.
        **kwargs: passed to :class:`torch.utils.data.DataLoader` (``collate_fn`` is fixed).
    """

    def __init__(self, dataset: LabelledImages, *, on_bad_image: Literal["error", "skip"] = "error", **kwargs: Any):
        # more worker processes than CPUs only wait for each other: capped here, with a note, for every loader
        kwargs["num_workers"] = cap_workers(kwargs.get("num_workers", 0))
        super().__init__(dataset, collate_fn=collate, **kwargs)
        self.on_bad_image = on_bad_image
        self._bad_images: list[str] = []

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in super().__iter__():
            for bad in batch.bad:
                if self.on_bad_image == "error":
                    raise BadImageError(bad.path, bad.reason)
                self._bad_images.append(bad.path)
            if batch.images is not None:
                yield batch.images, batch.labels

    def pop_bad_images(self) -> list[str]:
        """Paths skipped since the last call (call it after each epoch), then forget them."""
        bad, self._bad_images = self._bad_images, []
        return bad


@dataclass
class Loaders:
    """The three loaders of a run.

    Attributes:
        train: shuffled (seeded) training loader.
        val: validation loader, in dataset order.
        test: test loader, in dataset order.
        train_sampler: the training sampler: call its ``set_epoch(epoch)`` before each epoch. The order
            of an epoch depends on ``(seed, epoch)`` alone, so a resumed run sees the same batches.
    """

    train: ImageLoader
    val: ImageLoader
    test: ImageLoader
    train_sampler: DistributedSampler


def build_loaders(splits: Splits, cfg: DataConfig, *, distributed: bool = False, seed: int = 0,
                  pin_memory: bool = False) -> Loaders:
    """Loaders for ``splits.train`` / ``.val`` / ``.test`` with the batch size and workers of ``cfg``.

    Args:
        splits: a :class:`~insvp_cli.data.Splits`.
        cfg: the ``data`` config (``batch_size``, ``num_workers``, ``on_bad_image``).
        distributed: shard the training set over the process group with a :class:`DistributedSampler`.
            Validation and test are not sharded: every process sees the whole split, so metrics are
            exact (a DistributedSampler would pad them with repeated samples).
        seed: seed of the training order (and of the workers' augmentation seeds).
        pin_memory: page-locked batches for faster copies to a CUDA device.

    Returns:
        :class:`Loaders`; only the training loader drops its last batch, and only when it would hold a
        single image.
    """
    common = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, pin_memory=pin_memory,
                  persistent_workers=cfg.num_workers > 0, drop_last=False, on_bad_image=cfg.on_bad_image)
    # one process is a group of one: the same sampler, so shuffling is seeded per epoch either way. No
    # loader generator: worker seeds then come from the global RNG, which the engine reseeds every epoch.
    single = {} if distributed else {"num_replicas": 1, "rank": 0}
    sampler = DistributedSampler(splits.train, shuffle=True, seed=seed, drop_last=False, **single)
    # a last training batch of one image is dropped: BatchNorm in training mode (MLP-k's hidden layers, a
    # normed head) cannot normalise a single sample. Every rank holds len(sampler) indices, so all agree.
    lone_last = cfg.batch_size > 1 and len(sampler) % cfg.batch_size == 1
    train = ImageLoader(splits.train, sampler=sampler, **{**common, "drop_last": lone_last})
    val = ImageLoader(splits.val, shuffle=False, **common)
    test = ImageLoader(splits.test, shuffle=False, **common)
    return Loaders(train, val, test, sampler)


def pop_bad_images(loader: DataLoader) -> list[str]:
    """Paths of the images ``loader`` skipped since the last call (``[]`` for any other DataLoader)."""
    return loader.pop_bad_images() if isinstance(loader, ImageLoader) else []
