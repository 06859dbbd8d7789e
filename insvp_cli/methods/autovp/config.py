"""AutoVPConfig: the hyper-parameters of the ``autovp`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...common.errors import ConfigError
from ...config.coerce import bounded
from ...config.limits import MAX_CLASSES, MAX_EPOCHS
from ...config.protocols import ILM_STEPS, NO_MIXING, Protocol
from ..label_mapping_config import LabelMappingConfig


@dataclass
class AutoVPConfig(LabelMappingConfig):
    """AutoVP: the shared label-mapping fields at its ``demo.py`` defaults, plus the kind of output mapping.

    Attributes:
        mapping: ``fully_connected`` (a trained linear layer on the source logits) or ``frequency``.
    """

    name: str = "autovp"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"AutoVP": ()}
    # Adam without weight decay, MultiStepLR at half and at 72 % of the steps (non-CLIP backbones), 200 epochs
    published: ClassVar[Protocol] = Protocol(
        source="IBM/AutoVP: auto_vp/training_process.py (optimizer, scheduler), demo.py (argument defaults)",
        train={"optimizer": "adam", "lr": 0.001, "weight_decay": 0.0, "epochs": 200, **ILM_STEPS, **NO_MIXING},
    )
    image_fraction: float = bounded(192 / 224, gt=0, lt=1)
    per_class: int = bounded(5, ge=1, le=MAX_CLASSES)
    remap_every: int | None = bounded(None, ge=1, le=MAX_EPOCHS)
    mapping: Literal["fully_connected", "frequency"] = "fully_connected"

    def __post_init__(self) -> None:
        if self.mapping == "fully_connected" and self.remap_every is not None:
            raise ConfigError(f"method.remap_every: {self.remap_every}, but a fully_connected mapping is trained, not "
                              "remapped; use method.mapping=frequency for an iterative mapping")

    def learned_mapping(self) -> bool:
        return self.mapping == "fully_connected"
