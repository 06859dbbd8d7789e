"""LabelMappingConfig: what ILM-VP and AutoVP share (see :mod:`insvp_cli.methods.label_mapping`); no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..config.coerce import bounded
from ..config.limits import MAX_CLASSES, MAX_EPOCHS
from ..config.schema import MethodConfig


@dataclass
class LabelMappingConfig(MethodConfig):
    """The input prompt and the output label mapping of the label-mapping methods.

    Attributes:
        image_fraction: side of the image inside the prompt's canvas, as a share of the input side; the rest is
            the learnable frame.
        per_class: source classes mapped to each target class by the frequency mapping (its logit is the mean
            of theirs).
        remap_every: recompute the frequency mapping from the training split before every this many epochs
            (epochs 0, N, 2N, ...: iterative label mapping); ``None``: once, before the first epoch.
        source_classes: classes of the stand-in source label space of a headless backbone (a fixed random
            projection of its features); unused when the backbone has its pretrained classifier.
        mapping_weight_decay: weight decay on a trained output mapping (AutoVP's FullyMap); its authors' optimizer
            gives it none, so neither protocol does unless this asks.
    """

    keep_backbone_classifier: ClassVar[bool] = True

    image_fraction: float = bounded(128 / 224, gt=0, lt=1)
    per_class: int = bounded(1, ge=1, le=MAX_CLASSES)
    remap_every: int | None = bounded(1, ge=1, le=MAX_EPOCHS)
    source_classes: int = bounded(1000, ge=1, le=MAX_CLASSES)
    mapping_weight_decay: bool = False

    def learned_mapping(self) -> bool:
        """Whether the output mapping is a trained layer on the source logits rather than a frequency mapping."""
        return False
