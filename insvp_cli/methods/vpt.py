"""Visual prompt tuning (Jia et al., "Visual Prompt Tuning", ECCV 2022).

``num_tokens`` learnable tokens are inserted after the class token. ``deep: false`` (VPT-shallow):
one set before the first block, whose outputs then travel through every block. ``deep: true``
(VPT-deep): a new set before every block, replacing the previous block's prompt outputs. The prompt
outputs are dropped before the final norm, so the class token alone feeds the head. Tokens are
initialised xavier-uniform over ``3 * patch^2 + D`` fans as in the paper's code, with dropout 0.1 on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConfigError, MethodConfig
from . import register_method
from .base import Method, blocks_with_prompts, embed_tokens, patch_size, pool


@dataclass
class VPTConfig(MethodConfig):
    """VPT hyper-parameters.

    Attributes:
        num_tokens: prompt tokens per prompted block (the paper searches 1 to 200).
        deep: VPT-deep (prompts before every block) instead of VPT-shallow (before the first only).
        dropout: dropout on the prompt tokens.
    """

    name: str = "vpt"
    num_tokens: int = 10
    deep: bool = True
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.num_tokens < 1:
            raise ConfigError(f"method.num_tokens: {self.num_tokens} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"method.dropout: {self.dropout} is not in [0, 1)")


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


register_method("vpt", VPTConfig, VPT)
