"""The ``vpt`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from torch import nn

from ...backbone.prompting import FeaturePrompting, feature_prompting
from ..base import Method
from ..layers import xavier_prompt
from .config import VPTConfig


class PromptTokens(nn.Module):
    """``tokens``: one ``(n_s, P, C_s)`` tensor per prompted stage (a ViT has one stage: ``(blocks, P, D)``).

    Args:
        features: the backbone's feature-prompting strategy (stage widths and depths).
        num_tokens: ``P``.
        deep: a new set before every block, else before the first block only.
        dropout: dropout on the tokens, drawn per image.
    """

    def __init__(self, features: FeaturePrompting, num_tokens: int, deep: bool, dropout: float):
        super().__init__()
        blocks = features.depths if deep else [1]
        tensors = [xavier_prompt(n, num_tokens, width, patch=features.token_patch)
                   for n, width in zip(blocks, features.widths, strict=False)]
        self.tokens: nn.Parameter | nn.ParameterList = tensors[0] if len(tensors) == 1 else nn.ParameterList(tensors)
        self.drop = nn.Dropout(dropout)

    def forward(self, batch: int) -> list[torch.Tensor]:
        """The prompts of every prompted block in order, each ``(B, P, C_s)``."""
        stages = [self.tokens] if isinstance(self.tokens, nn.Parameter) else list(self.tokens)
        # (P, C) -> (B, P, C); dropout after the expansion, so each image gets its own mask
        return [self.drop(p.expand(batch, -1, -1)) for tokens in stages for p in tokens]


class VPT(Method):
    """Prompt tokens in the frozen backbone through its feature-prompting strategy (ViT or Swin)."""

    prefix = "vpt"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: VPTConfig):
        super().__init__(backbone, num_classes, cfg)
        self.features = feature_prompting(backbone)  # ViT or Swin, chosen once
        self.vpt = PromptTokens(self.features, cfg.num_tokens, cfg.deep, cfg.dropout)

    def no_weight_decay(self) -> set[str]:
        """The prompt tokens, unless ``prompt_weight_decay`` (VPT's code decays them)."""
        if self.cfg.prompt_weight_decay:
            return set()
        return {name for name, _ in self.named_parameters() if name.startswith("vpt.tokens")}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features.forward_features(self.backbone, x, self.vpt(x.shape[0]))
