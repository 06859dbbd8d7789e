"""The ``yoo`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Attention
from torch import nn

from ...backbone.vit import attention as vit_attention
from ...backbone.vit import block_with_attention, blocks_with_prompts, embed_tokens, patch_size, pool
from ...common.errors import UsageError
from ..base import Method
from ..layers import require_plain_blocks, xavier_prompt
from .config import YooConfig

TEMPERATURE_RANGE = (0.01, 10.0)  # the code's TEMP_MIN, TEMP_MAX


class GatedPrompts(nn.Module):
    """``tokens`` ``(P, D)``, ``gate_logits`` ``(N - 1,)`` and, with ``temperature``, ``temperature`` ``(N,)``."""

    def __init__(self, cfg: YooConfig, dim: int, depth: int, patch: int):
        super().__init__()
        self.tokens = xavier_prompt(cfg.num_tokens, dim, patch=patch)
        self.gate_logits = nn.Parameter(torch.full((depth - 1,), -float(cfg.gate_init)))
        self.temperature = nn.Parameter(torch.ones(depth)) if cfg.temperature else None
        self.drop = nn.Dropout(cfg.dropout)


def attention(attn: Attention, x: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """timm's ``Attention`` on tokens ``(B, T, D)`` with its logits divided by ``temperature`` (a scalar tensor)."""
    return vit_attention(attn, x, temperature=temperature, scale=attn.scale)


def tempered_block(block: nn.Module, x: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """timm's ``Block.forward`` on ``(B, T, D)`` with its attention logits divided by ``temperature``."""
    return block_with_attention(block, x, lambda h: attention(block.attn, h, temperature))


class Yoo(Method):
    """VPT-shallow prompts with a learnable gate per block and a learnable attention temperature per block."""

    prefix = "yoo"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: YooConfig):
        super().__init__(backbone, num_classes, cfg)
        if not hasattr(backbone, "blocks"):
            raise UsageError(f"method yoo needs a ViT with `blocks`; {type(backbone).__name__} has none")
        if cfg.temperature:  # re-composes the blocks and their attention from their sub-modules
            require_plain_blocks(backbone, cfg.name)
            other = next((j for j, b in enumerate(backbone.blocks)
                          if type(b.attn) is not Attention or getattr(b.attn, "gate", None) is not None), None)
            if other is not None:
                raise UsageError(f"method yoo: the attention temperature needs timm's plain Attention in every "
                                 f"block; block {other} has a {type(backbone.blocks[other].attn).__name__}")
        self.yoo = GatedPrompts(cfg, backbone.embed_dim, len(backbone.blocks), patch_size(backbone))

    def no_weight_decay(self) -> set[str]:
        return {"yoo.tokens"}

    def temperatures(self) -> torch.Tensor:
        """The per-block temperatures ``(N,)`` in [0.01, 10].

        In training the parameter's data is clamped in place, as the authors' code does, and the parameter itself is
        used: a temperature stepped past a bound returns to it and keeps its gradient (a clamp in the graph would give
        it none there). In eval mode the same values come from a clamp in the graph, which writes nothing (inference,
        export)."""
        if not self.training:
            return self.yoo.temperature.clamp(*TEMPERATURE_RANGE)
        with torch.no_grad():
            self.yoo.temperature.clamp_(*TEMPERATURE_RANGE)
        return self.yoo.temperature

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        temperatures = None if self.yoo.temperature is None else self.temperatures()
        start = self.backbone.num_prefix_tokens
        end = start + self.cfg.num_tokens

        def run_block(j: int, block: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
            prompts_in = tokens[:, start:end]
            tokens = block(tokens) if temperatures is None else tempered_block(block, tokens, temperatures[j])
            if j < len(self.yoo.gate_logits):  # the gated update of the prompts' outputs
                gate = torch.sigmoid(self.yoo.gate_logits[j]).to(tokens.dtype)
                mixed = gate * tokens[:, start:end] + (1 - gate) * prompts_in
                tokens = torch.cat([tokens[:, :start], mixed, tokens[:, end:]], dim=1)
            return tokens

        # VPT-shallow prompts after the prefix tokens, through every block, dropped before the final norm
        prompts = self.yoo.drop(self.yoo.tokens.expand(x.shape[0], -1, -1))
        return pool(self.backbone, blocks_with_prompts(self.backbone, embed_tokens(self.backbone, x), [prompts],
                                                       run_block=run_block))
