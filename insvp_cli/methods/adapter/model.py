"""The ``adapter`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import Bottleneck, RecomposedBlocks
from .config import AdapterConfig


class Adapters(nn.Module):
    """One bottleneck per block after the MLP, and after the attention for ``houlsby``."""

    def __init__(self, cfg: AdapterConfig, dim: int, depth: int):
        super().__init__()
        width = max(1, dim // cfg.reduction)

        def make() -> nn.ModuleList:
            return nn.ModuleList(Bottleneck(dim, width, cfg.activation, init=cfg.init) for _ in range(depth))

        self.after_attn = make() if cfg.placement == "houlsby" else None
        self.after_mlp = make()


class Adapter(RecomposedBlocks):
    """The frozen blocks, re-composed from their sub-modules with adapters on the sub-layer outputs."""

    prefix = "adapter"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: AdapterConfig):
        super().__init__(backbone, num_classes, cfg)
        self.adapter = Adapters(cfg, backbone.embed_dim, len(backbone.blocks))

    def block(self, j: int, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """timm's ``Block.forward`` with adapter ``j`` on the attention and/or MLP output: ``(B, T, D)``."""
        h = block.attn(block.norm1(x))
        if self.adapter.after_attn is not None:
            h = h + self.adapter.after_attn[j](h)
        x = x + block.drop_path1(block.ls1(h))
        h = block.mlp(block.norm2(x))
        h = h + self.adapter.after_mlp[j](h)
        return x + block.drop_path2(block.ls2(h))
