"""Reading a dataset's splits: the registered reader, validation carving, few-shot training splits, class subsets,
transforms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..common.errors import UsageError
from ..config.schema import DataConfig
from .base import LabelledImages, Parts, Splits, seeded_split
from .fewshot import few_shot
from .registry import DATASETS


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
    from .transforms import build_transforms  # torchvision: only when images are read

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
