"""Bottleneck adapters in every transformer block (Houlsby et al., "Parameter-Efficient Transfer Learning
for NLP", ICML 2019).

Each adapter maps a sub-layer's output ``h`` to ``h + up(act(down(h)))`` with ``down: d -> d / r`` and
``up: d / r -> d``, before the residual addition. Two placements:

- ``pfeiffer`` (default): one adapter after the MLP of each block (Pfeiffer et al., "AdapterFusion",
  EACL 2021). This is the "Adapter" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022), whose
  numbers the InsVP paper compares against, with the ViT's GELU as non-linearity.
- ``houlsby``: one after the attention projection and one after the MLP, as in Houlsby et al.

The up-projection starts at zero (the paper's near-identity initialisation taken to its limit), so the
model starts exactly as the backbone. Adapters live under ``adapter.``; the backbone's state dict is
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..config import ConfigError, MethodConfig
from . import register_method
from .base import Bottleneck, RecomposedBlocks


@dataclass
class AdapterConfig(MethodConfig):
    """Adapter hyper-parameters.

    Attributes:
        reduction: reduction factor ``r``: the bottleneck width is ``d // r`` (at least 1).
        placement: ``pfeiffer`` (after the MLP) or ``houlsby`` (after the attention and after the MLP).
        activation: the bottleneck's non-linearity, ``gelu`` or ``relu``.
    """

    name: str = "adapter"
    reduction: int = 8
    placement: Literal["pfeiffer", "houlsby"] = "pfeiffer"
    activation: Literal["gelu", "relu"] = "gelu"

    def __post_init__(self) -> None:
        if self.reduction < 1:
            raise ConfigError(f"method.reduction: {self.reduction} must be >= 1")


class Adapters(nn.Module):
    """One bottleneck per block after the MLP, and after the attention for ``houlsby``."""

    def __init__(self, cfg: AdapterConfig, dim: int, depth: int):
        super().__init__()
        width = max(1, dim // cfg.reduction)

        def make() -> nn.ModuleList:
            return nn.ModuleList(Bottleneck(dim, width, cfg.activation) for _ in range(depth))

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


register_method("adapter", AdapterConfig, Adapter)
