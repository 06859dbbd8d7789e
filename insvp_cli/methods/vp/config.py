"""VPConfig: the hyper-parameters of the ``vp`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ...config.coerce import bounded
from ...config.limits import MAX_IMAGE_SIZE
from ...config.protocols import NO_MIXING, Protocol
from ...config.schema import MethodConfig


@dataclass
class VPConfig(MethodConfig):
    """Padding-prompt hyper-parameters.

    Attributes:
        pad: the frame width ``p`` in pixels; ``None``: the paper's 30 px at 224 px, scaled with the
            shorter input side (4 px at 32 px), at least 1.
    """

    name: str = "vp"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"VP": ()}
    # SGD at learning rate 40 (momentum 0.9, no weight decay), cosine per step after a warm-up of 1,000 steps (about
    # 0.25 % of a CIFAR run at batch 128: the fraction here), 1,000 epochs, batch 128 for vision models (256 for CLIP)
    published: ClassVar[Protocol] = Protocol(
        source="hjbahng/visual_prompting: main.py and main_clip.py (argument defaults)",
        train={"optimizer": "sgd", "momentum": 0.9, "lr": 40.0, "weight_decay": 0.0, "schedule": "cosine",
               "min_lr": 0.0, "epochs": 1000, "warmup_fraction": 0.0025, **NO_MIXING},
        data={"batch_size": 128},
    )
    pad: int | None = bounded(None, ge=1, le=MAX_IMAGE_SIZE)
