"""The ``vpt`` method's model (see the package docstring)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ...backbone.vit import blocks_with_prompts, embed_tokens, patch_size, pool
from ...errors import ConfigError
from ..base import Method
from .config import VPTConfig


class PromptTokens(nn.Module):
    """``tokens``: ``(blocks, P, D)``, one set per prompted block, and their dropout."""

    def __init__(self, blocks: int, num_tokens: int, dim: int, patch: int, dropout: float):
        super().__init__()
        self.tokens = nn.Parameter(torch.empty(blocks, num_tokens, dim))
        # xavier-uniform as if the tokens came out of the (3 * patch^2 -> D) patch projection
        bound = math.sqrt(6.0 / float(3 * patch * patch + dim))
        nn.init.uniform_(self.tokens, -bound, bound)
        self.drop = nn.Dropout(dropout)

    def forward(self, batch: int) -> list[torch.Tensor]:
        # (P, D) -> (B, P, D); dropout after the expansion, so each image gets its own mask
        return [self.drop(p.expand(batch, -1, -1)) for p in self.tokens]


class VPT(Method):
    """Prompt tokens in the frozen ViT through :func:`~insvp_cli.methods.base.blocks_with_prompts`."""

    prefix = "vpt"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: VPTConfig):
        super().__init__(backbone, num_classes, cfg)
        if not hasattr(backbone, "blocks"):
            raise ConfigError(f"method.name: vpt needs a ViT with `blocks`; {type(backbone).__name__} has none")
        blocks = len(backbone.blocks) if cfg.deep else 1
        self.vpt = PromptTokens(blocks, cfg.num_tokens, backbone.embed_dim, patch_size(backbone), cfg.dropout)

    def no_weight_decay(self) -> set[str]:
        return {"vpt.tokens"}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = embed_tokens(self.backbone, x)
        tokens = blocks_with_prompts(self.backbone, tokens, self.vpt(x.shape[0]))
        return pool(self.backbone, tokens)
