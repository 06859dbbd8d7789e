"""The ``adaptformer`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import Bottleneck, RecomposedBlocks
from .config import AdaptFormerConfig


class ParallelBottlenecks(nn.Module):
    """One ReLU bottleneck per block."""

    def __init__(self, cfg: AdaptFormerConfig, dim: int, depth: int):
        super().__init__()
        self.bottlenecks = nn.ModuleList(
            Bottleneck(dim, cfg.bottleneck, "relu", cfg.dropout) for _ in range(depth)
        )


class AdaptFormer(RecomposedBlocks):
    """The frozen blocks, re-composed from their sub-modules with a scaled bottleneck beside each MLP."""

    prefix = "adaptformer"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: AdaptFormerConfig):
        super().__init__(backbone, num_classes, cfg)
        self.adaptformer = ParallelBottlenecks(cfg, backbone.embed_dim, len(backbone.blocks))

    def block(self, j: int, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """timm's ``Block.forward`` plus ``s * bottleneck_j(.)`` added beside the MLP branch: ``(B, T, D)``."""
        x = x + block.drop_path1(block.ls1(block.attn(block.norm1(x))))
        h = block.norm2(x)
        side = self.adaptformer.bottlenecks[j](h if self.cfg.adapter_input == "norm" else x)
        return x + block.drop_path2(block.ls2(block.mlp(h))) + self.cfg.scale * side
