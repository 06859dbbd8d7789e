"""Partial fine-tuning (partial-k): the last ``k`` blocks, the final norm and the head train.

As the "Partial-k" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022, §4.1), after Yosinski et
al., "How transferable are features in deep neural networks?" (NeurIPS 2014).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConfigError, MethodConfig
from . import register_method
from .base import Method, pool


@dataclass
class PartialConfig(MethodConfig):
    """Partial-k hyper-parameters.

    Attributes:
        blocks: ``k``, how many of the last transformer blocks train (1 to the backbone's depth).
    """

    name: str = "partial"
    blocks: int = 1

    def __post_init__(self) -> None:
        if self.blocks < 1:
            raise ConfigError(f"method.blocks: {self.blocks} must be >= 1")


class Partial(Method):
    """The last ``k`` blocks plus the final norm (``norm``, or ``fc_norm`` for average-pooled models) train.

    The frozen earlier blocks run in the same train/eval mode as the trained ones; timm's ViTs have no
    dropout or drop-path by default, so their outputs stay those of the pretrained model.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: PartialConfig):
        super().__init__(backbone, num_classes, cfg)
        depth = len(getattr(backbone, "blocks", ()))
        if cfg.blocks > depth:
            raise ConfigError(f"method.blocks: {cfg.blocks} is more than the {depth} blocks of the backbone")
        self.first_trained = depth - cfg.blocks

    def trainable_patterns(self) -> tuple[str, ...]:
        depth = len(self.backbone.blocks)
        blocks = tuple(f"backbone.blocks.{j}.*" for j in range(self.first_trained, depth))
        return (*blocks, "backbone.norm.*", "backbone.fc_norm.*", "head.*")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool(self.backbone, self.backbone.forward_features(x))


register_method("partial", PartialConfig, Partial)
