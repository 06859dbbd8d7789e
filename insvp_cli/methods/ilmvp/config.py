"""ILMVPConfig: the hyper-parameters of the ``ilmvp`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ...config.protocols import ILM_STEPS, NO_MIXING, Protocol
from ..label_mapping_config import LabelMappingConfig


@dataclass
class ILMVPConfig(LabelMappingConfig):
    """ILM-VP: the shared label-mapping fields at the paper code's defaults (one source class per target,
    remapped before every epoch, the image at 128/224 of the canvas)."""

    name: str = "ilmvp"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"ILM-VP": ()}
    # Adam on the frame only, no weight decay, the learning rate / 10 at half and at 72 % of 200 epochs, no warm-up;
    # its loaders neither augment nor mix; batch 128 (64 for DTD and Pets)
    published: ClassVar[Protocol] = Protocol(
        source="OPTML-Group/ILM-VP: experiments/cnn/ilm_vp.py (argument defaults, optimizer, scheduler), data/",
        train={"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0, "epochs": 200, **ILM_STEPS, **NO_MIXING},
        data={"augment": False, "batch_size": 128},
    )
