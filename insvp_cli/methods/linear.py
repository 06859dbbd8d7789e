"""Linear probe: the frozen backbone's pooled features and a trainable linear head."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import MethodConfig
from . import register_method
from .base import Method, pool


@dataclass
class LinearConfig(MethodConfig):
    name: str = "linear"


class Linear(Method):
    """Only the classification head trains."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool(self.backbone, self.backbone.forward_features(x))


register_method("linear", LinearConfig, Linear)
