"""DataLoaders that never let an unreadable image pass silently and whose randomness is a function of the run's seed,
the epoch and the sample alone, with or without worker processes.

Unreadable images. Datasets hand the loader a :class:`~insvp_cli.data.base.BadImage` marker instead of raising
inside a worker (see ``LabelledImages.__getitems__``); :func:`collate` moves the markers' paths out of the batch,
and :class:`ImageLoader` — in the main process — either raises :class:`BadImageError` naming the file
(``on_bad_image: error``) or drops the sample and remembers its path (``skip``) until
:meth:`ImageLoader.pop_bad_images` is called, once per epoch.

Randomness (what makes a resumed run replay the uninterrupted one). The training sampler (:class:`EpochSampler`)
runs in the main process and hands the workers keys ``(sample, seed)``: the order is a permutation of ``(seed,
epoch)`` and each sample's augmentation seed a function of ``(seed, epoch, sample)`` (:func:`augmentation_seeds`),
under which the sample's random crop and flip are drawn. Nothing depends on which worker reads a sample, on how
long the workers live (only the training pool is persistent) or on how many there are: 0 workers and 8 give the
same batches, and so does a run resumed at any epoch. Dropout and Mixup draw in the main process from generators
that the training loop seeds per ``(seed, epoch, rank)`` (``insvp_cli.train.loop.seed_epoch``).

Under ``torchrun`` the ranks share the sampler's seed (each takes its part of one permutation); validation and
test are split into contiguous, unpadded parts (:func:`shard`), whose counts the engine sums over the ranks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.data._utils.collate import default_collate

from ..config.schema import DataConfig
from ..runtime.cpus import loader_workers
from .base import BadImage, BadImageError, LabelledImages

if TYPE_CHECKING:
    from .base import Splits

# data.num_workers: null takes this many workers at most (each is a process holding its own copy of the
# transforms; beyond this, decoding is rarely what a step waits for)
# distinguishes the augmentation seeds from every other stream drawn from the run's seed
_AUGMENTATION_STREAM = 0xA06


def augmentation_seeds(seed: int, epoch: int, size: int) -> np.ndarray:
    """The augmentation seed of every sample ``0..size-1`` in ``epoch``: a function of ``(seed, epoch, sample)``."""
    return np.random.default_rng([seed, epoch, _AUGMENTATION_STREAM]).integers(0, 2**63, size=size)


class EpochSampler(DistributedSampler):
    """The training order of one rank, each index with its augmentation seed: keys ``(index, seed)``.

    A :class:`~torch.utils.data.DistributedSampler` (a permutation of ``(seed, epoch)``, split over the ranks and
    padded to equal lengths; one process is a group of one); call :meth:`set_epoch` before each epoch.
    """

    def __iter__(self) -> Iterator[tuple[int, int]]:
        seeds = augmentation_seeds(self.seed, self.epoch, len(self.dataset))
        return ((i, int(seeds[i])) for i in super().__iter__())


class _Keyed:
    """What a loader's DataLoader reads: ``dataset`` by index, or by key ``(index, seed)`` with the sample's random
    transform drawn from torch's generator seeded with ``seed`` (and the generator's state put back, so a loader
    without workers leaves the main process's draws alone)."""

    def __init__(self, dataset: LabelledImages):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> list[tuple[Any, int] | BadImage]:
        if not keys or not isinstance(keys[0], tuple):
            return self.dataset.__getitems__(keys)
        samples = []
        with torch.random.fork_rng(devices=()):
            for index, seed in keys:
                # the CPU generator alone (the transforms draw from it): torch.manual_seed would also queue a seed
                # for every CUDA device, recording the call's stack each time (1.5 ms a sample)
                torch.default_generator.manual_seed(seed)
                samples.extend(self.dataset.__getitems__([index]))
        return samples


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
        num_workers: worker processes (``None``: :func:`~insvp_cli.runtime.cpus.loader_workers`); ``persistent_workers``
            only with some.
        **kwargs: passed to :class:`torch.utils.data.DataLoader` (``collate_fn`` is fixed).
    """

    def __init__(self, dataset: LabelledImages, *, on_bad_image: Literal["error", "skip"] = "error",
                 num_workers: int | None = 0, **kwargs: Any):
        workers = loader_workers(num_workers)
        # a generator of its own, seeded once from the global one: a DataLoader draws from it whenever it starts an
        # epoch's iterator (its workers' base seed, a random order) and so would take one draw from the main process's
        # generator per epoch without persistent workers and none with them, shifting dropout and Mixup
        kwargs.setdefault("generator", torch.Generator().manual_seed(int(torch.randint(2**62, ()))))
        super().__init__(_Keyed(dataset), collate_fn=collate, num_workers=workers,
                         persistent_workers=kwargs.pop("persistent_workers", False) and workers > 0, **kwargs)
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
        val: validation loader, in dataset order (under ``torchrun``: this rank's part).
        test: test loader, in dataset order (under ``torchrun``: this rank's part).
        train_sampler: the training sampler: call its ``set_epoch(epoch)`` before each epoch. The batches of an
            epoch depend on ``(seed, epoch)`` alone, so a resumed run sees the same batches.
    """

    train: ImageLoader
    val: ImageLoader
    test: ImageLoader
    train_sampler: EpochSampler


def part_bounds(size: int, rank: int, replicas: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank``'s contiguous part of ``size`` samples out of ``replicas``."""
    return size * rank // replicas, size * (rank + 1) // replicas


def shard(dataset: LabelledImages, rank: int, replicas: int) -> LabelledImages:
    """Rank ``rank``'s contiguous part of ``dataset`` out of ``replicas``, unpadded: every sample in exactly one part,
    so counts summed over the ranks are exact (a DistributedSampler pads with repeated samples)."""
    return dataset.select(np.arange(*part_bounds(len(dataset), rank, replicas)))


def build_loaders(splits: Splits, cfg: DataConfig, *, distributed: bool = False, seed: int = 0,
                  pin_memory: bool = False) -> Loaders:
    """Loaders for ``splits.train`` / ``.val`` / ``.test`` with the batch size and workers of ``cfg``.

    Args:
        splits: a :class:`~insvp_cli.data.Splits`.
        cfg: the ``data`` config (``batch_size``, ``num_workers``, ``on_bad_image``).
        distributed: shard the training set over the process group (:class:`EpochSampler`). Validation and test
            are not split here: a caller that sums the ranks' counts passes each rank its :func:`shard`.
        seed: seed of the training order and of the augmentation.
        pin_memory: page-locked batches for faster copies to a CUDA device.

    Returns:
        :class:`Loaders`; only the training loader drops its last batch, and only when it would hold a
        single image; only its workers persist from epoch to epoch.
    """
    common = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, pin_memory=pin_memory, drop_last=False,
                  on_bad_image=cfg.on_bad_image)
    single = {} if distributed else {"num_replicas": 1, "rank": 0}
    sampler = EpochSampler(splits.train, shuffle=True, seed=seed, drop_last=False, **single)
    # a last training batch of one image is dropped: BatchNorm in training mode (MLP-k's hidden layers, a
    # normed head) cannot normalise a single sample. Every rank holds len(sampler) indices, so all agree.
    lone_last = cfg.batch_size > 1 and len(sampler) % cfg.batch_size == 1
    train = ImageLoader(splits.train, sampler=sampler, persistent_workers=True, **{**common, "drop_last": lone_last})
    val = ImageLoader(splits.val, shuffle=False, **common)
    test = ImageLoader(splits.test, shuffle=False, **common)
    return Loaders(train, val, test, sampler)


def pop_bad_images(loader: DataLoader) -> list[str]:
    """Paths of the images ``loader`` skipped since the last call (``[]`` for any other DataLoader)."""
    return loader.pop_bad_images() if isinstance(loader, ImageLoader) else []
