"""The ``yoo`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Attention
from torch import nn

from ...backbone.vit import embed_tokens, patch_size, pool
from ...errors import UsageError
from ..base import Method, require_plain_blocks, xavier_prompt
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
    """timm's ``Attention`` on tokens ``(B, T, D)`` with its logits divided by ``temperature`` (a scalar tensor).

    Dividing the logits ``q k^T * scale`` by ``t`` is scaling ``q`` by ``1 / t`` after its norm.
    """
    batch, tokens, _ = x.shape
    # (B, T, 3 * heads * head_dim) -> 3 x (B, heads, T, head_dim)
    q, k, v = attn.qkv(x).reshape(batch, tokens, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q) / temperature.to(q.dtype), attn.k_norm(k)
    out = nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0,
                                                     scale=attn.scale)
    # (B, heads, T, head_dim) -> (B, T, heads * head_dim)
    out = getattr(attn, "norm", nn.Identity())(out.transpose(1, 2).reshape(batch, tokens, -1))
    return attn.proj_drop(attn.proj(out))


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

    def block(self, j: int, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """timm's ``Block.forward`` on ``(B, T, D)`` with block ``j``'s attention temperature."""
        if self.yoo.temperature is None:
            return block(x)
        temperature = self.yoo.temperature[j].clamp(*TEMPERATURE_RANGE)
        x = x + block.drop_path1(block.ls1(attention(block.attn, block.norm1(x), temperature)))
        return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = embed_tokens(self.backbone, x)
        start, length = self.backbone.num_prefix_tokens, self.cfg.num_tokens
        end = start + length
        prompts = self.yoo.drop(self.yoo.tokens.expand(x.shape[0], -1, -1)).to(tokens.dtype)
        # (B, prefix + N, D) -> (B, prefix + P + N, D)
        tokens = torch.cat([tokens[:, :start], prompts, tokens[:, start:]], dim=1)
        for j, block in enumerate(self.backbone.blocks):
            prompts_in = tokens[:, start:end]
            tokens = self.block(j, block, tokens)
            if j < len(self.yoo.gate_logits):
                gate = torch.sigmoid(self.yoo.gate_logits[j]).to(tokens.dtype)
                mixed = gate * tokens[:, start:end] + (1 - gate) * prompts_in
                tokens = torch.cat([tokens[:, :start], mixed, tokens[:, end:]], dim=1)
        # (B, prefix + P + N, D) -> (B, prefix + N, D)
        tokens = torch.cat([tokens[:, :start], tokens[:, end:]], dim=1)
        return pool(self.backbone, self.backbone.norm(tokens))
