"""Datasets of InsVP (ACM MM 2024, §4.1) in their real on-disk formats, their transforms and loaders.

Use::

    from insvp_cli.data import build_splits, build_loaders
    splits = build_splits(cfg.data, backbone.data_config(model))
    loaders = build_loaders(splits, cfg.data, distributed=False, seed=cfg.train.seed, pin_memory=True)
    for epoch in range(epochs):
        if loaders.train_sampler is not None:
            loaders.train_sampler.set_epoch(epoch)
        for images, labels in loaders.train:     # (B, 3, H, W) float normalised, (B,) int64
            ...
        skipped = pop_bad_images(loaders.train)  # paths dropped this epoch (on_bad_image: skip)

``splits.train`` / ``.val`` / ``.test`` are map-style datasets yielding ``(tensor (3, H, W), int label)``;
``splits.classes`` names the labels. Registered datasets (``dataset_names()``): the torchvision-backed
``cifar10``, ``cifar100``, ``svhn``, ``gtsrb``, ``food101``, ``dtd``, ``flowers102``; VPT's FGVC splits
``cub``, ``nabirds``, ``oxford_flowers``, ``stanford_dogs``, ``stanford_cars``; one VTAB-1k task, ``vtab``;
``imagefolder``; and the offline ``mnist5k`` and ``digits``.

Splits: official validation splits are used where they exist (DTD partition 1, Flowers-102, the FGVC
files, VTAB's ``val200``, ``imagefolder/val``); otherwise ``data.val_fraction`` of each class of the official
training set is held out (seeded by ``data.seed``, disjoint from what remains). ``data.classes`` keeps a subset of the
labels (indices into the full class list), renumbered 0..K-1 in the given order. ``data.shots: K`` then keeps K
training images per class (``data.shot_seed`` picks them); validation and test stay whole.

Unreadable images: inside a loader, a file PIL cannot read never raises in a worker process. With
``data.on_bad_image: error`` the loader raises :class:`BadImageError` (a ``UsageError``: exit code 2)
naming the file as soon as its batch arrives. With ``skip`` the sample is left out of its batch (a batch
may be smaller; an entirely unreadable batch is not yielded) and its path is recorded on the loader:
``pop_bad_images(loader)`` (or ``loader.pop_bad_images()``) returns the paths recorded since the last
call and clears them, so call it once after each epoch and report the count. Indexing a dataset
directly (``splits.train[i]``) raises :class:`BadImageError` for an unreadable file in either mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config import DataConfig
from ..errors import UsageError
from . import digits, fgvc, folder, torchvision_sets, vtab  # noqa: F401  (register the datasets)
from .base import (
    DATASETS,
    BadImage,
    BadImageError,
    DatasetSpec,
    ImageArrays,
    ImageFiles,
    LabelledImages,
    Parts,
    Splits,
    read_rgb,
    register_dataset,
    seeded_split,
)
from .fewshot import few_shot
from .loaders import ImageLoader, Loaders, build_loaders, pop_bad_images
from .transforms import build_transforms, preprocess_spec

__all__ = [
    "DATASETS", "BadImage", "BadImageError", "DatasetSpec", "ImageArrays", "ImageFiles", "ImageLoader",
    "LabelledImages", "Loaders", "Parts", "Splits", "build_loaders", "build_splits", "build_transforms",
    "dataset_names", "load_splits", "pop_bad_images", "preprocess_spec", "read_rgb", "register_dataset",
]


def dataset_names() -> list[str]:
    """Names of the registered datasets, sorted."""
    return DATASETS.names()


def load_splits(cfg: DataConfig) -> Splits:
    """Read dataset ``cfg.name``, keep ``cfg.classes``, carve validation if needed; no transforms (PIL images).

    Raises:
        UsageError: unknown name (lists the valid ones), a missing or incomplete root (names the expected
            layout), a bad class subset.
    """
    spec = DATASETS.get(cfg.name)
    if cfg.seed < 0:
        raise UsageError(f"data.seed: {cfg.seed} must be >= 0")
    parts = spec.read(cfg)
    if parts.val is None:
        # carved before the class subset, with the original labels, so that a subset holds out exactly
        # the images the full dataset holds out (seeded_split shuffles each class on its own)
        kept, held = seeded_split(parts.train.labels, cfg.val_fraction, cfg.seed)
        parts = Parts(parts.train.select(kept), parts.train.select(held), parts.test, parts.classes)
    if cfg.shots is not None:  # before the class subset: a class's K images are picked by its original label
        parts = Parts(parts.train.select(few_shot(parts.train.labels, cfg.shots, cfg.shot_seed)), parts.val,
                      parts.test, parts.classes)
    if cfg.classes is not None:
        parts = _keep_classes(parts, cfg.classes)
    return Splits(cfg.name, parts.train, parts.val, parts.test, parts.classes)


def build_splits(cfg: DataConfig, data_cfg: Mapping[str, Any]) -> Splits:
    """:func:`load_splits` with the train / eval transforms from the backbone's data config.

    Args:
        cfg: the ``data`` config group.
        data_cfg: :func:`insvp_cli.backbone.data_config` of the model (``input_size``, ``mean``, ``std``,
            ``interpolation``).

    Returns:
        :class:`Splits` whose datasets yield ``(float tensor (3, H, W), int label)``.
    """
    splits = load_splits(cfg)
    train_tf, eval_tf = build_transforms(cfg, data_cfg, flip=DATASETS.get(cfg.name).flip)
    return Splits(splits.name, splits.train.with_transform(train_tf), splits.val.with_transform(eval_tf),
                  splits.test.with_transform(eval_tf), splits.classes)


def _keep_classes(parts: Parts, keep: list[int]) -> Parts:
    """Only the samples of labels ``keep``, relabelled ``keep[i] -> i``."""
    n = len(parts.classes)
    bad = [c for c in keep if not 0 <= c < n]
    if bad:
        raise UsageError(f"data.classes: {bad} out of range; this dataset has classes 0..{n - 1}")
    if len(set(keep)) != len(keep):
        raise UsageError(f"data.classes: {keep} lists a class twice")
    if not keep:
        raise UsageError("data.classes: an empty list keeps nothing; use null for all classes")
    remap = np.full(n, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))

    def subset(ds: LabelledImages) -> LabelledImages:
        positions = np.flatnonzero(remap[ds.labels] >= 0)
        return ds.select(positions).relabel(remap)

    return Parts(subset(parts.train), subset(parts.val), subset(parts.test), [parts.classes[c] for c in keep])
