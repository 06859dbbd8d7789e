"""AdaptFormer: a scaled bottleneck in parallel with the MLP of every block (Chen et al., "AdaptFormer:
Adapting Vision Transformers for Scalable Visual Recognition", NeurIPS 2022).

With ``x'`` the block's stream after the attention residual, the paper's AdaptMLP (§3.2) is::

    x~ = ReLU(LN(x') W_down) W_up
    x  = MLP(LN(x')) + s * x~ + x'

where ``LN`` is the block's own (frozen) MLP norm. The authors' code feeds the bottleneck ``x'`` without
the norm (``ffn_adapter_layernorm_option="none"``); ``adapter_input: residual`` reproduces that. Both
use bottleneck 64, ``s = 0.1``, dropout 0.1 on the bottleneck and a zero-initialised up-projection,
so the model starts exactly as the backbone.
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
class AdaptFormerConfig(MethodConfig):
    """AdaptFormer hyper-parameters.

    Attributes:
        bottleneck: the bottleneck width ``d^``.
        scale: the scaling factor ``s`` of the parallel branch.
        dropout: dropout on the bottleneck activations.
        adapter_input: ``norm`` (the paper: ``LN(x')``) or ``residual`` (the authors' code: ``x'``).
    """

    name: str = "adaptformer"
    bottleneck: int = 64
    scale: float = 0.1
    dropout: float = 0.1
    adapter_input: Literal["norm", "residual"] = "norm"

    def __post_init__(self) -> None:
        if self.bottleneck < 1:
            raise ConfigError(f"method.bottleneck: {self.bottleneck} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"method.dropout: {self.dropout} is not in [0, 1)")


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


register_method("adaptformer", AdaptFormerConfig, AdaptFormer)
