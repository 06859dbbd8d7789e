"""ILMVPConfig: the hyper-parameters of the ``ilmvp`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ..label_mapping_config import LabelMappingConfig


@dataclass
class ILMVPConfig(LabelMappingConfig):
    """ILM-VP: the shared label-mapping fields at the paper code's defaults (one source class per target,
    remapped before every epoch, the image at 128/224 of the canvas)."""

    name: str = "ilmvp"
