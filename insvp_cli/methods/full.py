"""Full fine-tuning: every backbone weight and the head train (the upper reference of Jia et al., "Visual
Prompt Tuning", ECCV 2022, Table 1, and of the InsVP paper's comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import MethodConfig
from . import register_method
from .base import Method, pool


@dataclass
class FullConfig(MethodConfig):
    """Full fine-tuning has no hyper-parameters of its own (the schedule is in ``train``)."""

    name: str = "full"


class Full(Method):
    """The whole backbone and the head train; the backbone follows train/eval mode (dropout, drop-path)."""

    def trainable_patterns(self) -> tuple[str, ...]:
        return ("backbone.*", "head.*")

    def no_weight_decay(self) -> set[str]:
        """The backbone's own exemptions (timm: position embedding, class and register tokens)."""
        names = dict(self.backbone.named_parameters())
        own = getattr(self.backbone, "no_weight_decay", set)()
        return {f"backbone.{n}" for n in own if n in names}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool(self.backbone, self.backbone.forward_features(x))


register_method("full", FullConfig, Full)
