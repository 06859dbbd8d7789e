"""The ``e2vpt`` method's model (see the package docstring)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...backbone.vit import attention, block_with_attention, blocks_with_prompts, embed_tokens, patch_size, pool
from ...common.errors import ConfigError
from ..base import Method, TrainingData
from ..layers import require_plain_blocks, xavier_prompt
from .config import E2VPTConfig


def attention_with_kv(attn: nn.Module, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """timm's ``Attention.forward`` on ``x`` ``(B, N, D)`` with prompt keys and values ``(B, H, P, hd)`` added.

    The prompts go before the tokens' keys and values (E2VPT's default placement; attention does not depend
    on the order); they are not projected or normalised, and queries are the tokens' only.
    """
    return attention(attn, x, prefix_kv=(keys, values))


def _kv_prompt(depth: int, heads: int, tokens: int, head_dim: int) -> nn.Parameter:
    """``(depth, H, P, hd)``, Kaiming-uniform per block as E2VPT's code (fan-in ``P * hd``, leaky-ReLU gain)."""
    prompt = nn.Parameter(torch.empty(depth, heads, tokens, head_dim))
    bound = math.sqrt(6.0 / (tokens * head_dim))
    nn.init.uniform_(prompt, -bound, bound)
    return prompt


def prune_masks(token_score: torch.Tensor, segment_score: torch.Tensor,
                cfg: E2VPTConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """0/1 masks from importance scores: the least important tokens, then the same number of segments in every token
    kept, as E2VPT's trainer prunes (each token masks its own least important ``int(R * prune_segments)`` segments,
    at most ``R - min_segments``).

    Args:
        token_score: ``(P,)`` importance of each visual prompt token.
        segment_score: ``(P, R)`` importance of each segment.
        cfg: the shares to prune and the minimums to keep.

    Returns:
        ``token_mask`` ``(P,)`` and ``segment_mask`` ``(P, R)`` (a pruned token's segments stay 1; its
        token mask already zeroes it).
    """
    tokens, segments = segment_score.shape
    token_mask = torch.ones_like(token_score)
    pruned = min(int(tokens * cfg.prune_tokens), tokens - cfg.min_tokens)
    token_mask[torch.argsort(token_score, stable=True)[:pruned]] = 0
    segment_mask = torch.ones_like(segment_score)
    per_token = min(int(segments * cfg.prune_segments), segments - cfg.min_segments)
    # (P, R) -> (P, per_token): each token's least important segments
    least = torch.argsort(segment_score, dim=1, stable=True)[:, :per_token]
    kept = token_mask.bool()
    segment_mask[kept] = segment_mask[kept].scatter(1, least[kept], 0.0)
    return token_mask, segment_mask


class E2VPTPrompts(nn.Module):
    """Visual prompts ``prompts`` ``(n, P, D)``, key-value prompts ``keys`` (and ``values``) ``(depth, H, P_kv, hd)``,
    and, with pruning, the 0/1 buffers ``token_mask`` ``(P,)`` and ``segment_mask`` ``(P, R)``."""

    def __init__(self, cfg: E2VPTConfig, backbone: nn.Module):
        super().__init__()
        depth, dim = len(backbone.blocks), backbone.embed_dim
        attn = backbone.blocks[0].attn
        self.prompts = xavier_prompt(depth if cfg.deep else 1, cfg.visual_tokens, dim, patch=patch_size(backbone))
        self.keys = _kv_prompt(depth, attn.num_heads, cfg.kv_tokens, attn.head_dim)
        self.values = None if cfg.share_kv else _kv_prompt(depth, attn.num_heads, cfg.kv_tokens, attn.head_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.kv_drop = nn.Dropout(cfg.kv_dropout)
        if cfg.prune and dim % cfg.segments:
            raise ConfigError(f"method.segments: {cfg.segments} does not divide the token width {dim}")
        # without pruning there are no masks (None buffers stay out of the state dict)
        self.register_buffer("token_mask", torch.ones(cfg.visual_tokens) if cfg.prune else None)
        self.register_buffer("segment_mask", torch.ones(cfg.visual_tokens, cfg.segments) if cfg.prune else None)

    def mask(self) -> torch.Tensor | None:
        """The visual prompts' mask ``(P, D)``: token mask times its segments' masks (contiguous pieces)."""
        if self.token_mask is None:
            return None
        width = self.prompts.shape[-1] // self.segment_mask.shape[1]
        # (P, R) -> (P, R * D / R) = (P, D)
        return self.token_mask[:, None] * self.segment_mask.repeat_interleave(width, dim=1)

    def visual(self, batch: int) -> list[torch.Tensor]:
        """The visual prompts of every prompted block, ``(B, P, D)`` each, masked, dropout drawn per image."""
        mask = self.mask()
        prompts = self.prompts if mask is None else self.prompts * mask
        # (P, D) -> (B, P, D), then dropout: each image draws its own mask
        return [self.drop(p.expand(batch, -1, -1)) for p in prompts]

    def key_values(self, j: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Block ``j``'s key and value prompts ``(B, H, P_kv, hd)``; shared ones get two dropout draws."""
        values = self.keys if self.values is None else self.values
        # (H, P_kv, hd) -> (B, H, P_kv, hd)
        return (self.kv_drop(self.keys[j].expand(batch, -1, -1, -1)),
                self.kv_drop(values[j].expand(batch, -1, -1, -1)))


class E2VPT(Method):
    """Visual prompts between the blocks and key-value prompts inside every block's attention (timm ViT blocks)."""

    prefix = "e2vpt"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: E2VPTConfig):
        super().__init__(backbone, num_classes, cfg)
        require_plain_blocks(backbone, cfg.name)
        self.e2vpt = E2VPTPrompts(cfg, backbone)
        # what rewinding (with pruning) restores: every trainable tensor as built (the build is seeded, so a resumed
        # run's rebuilt model holds the same values)
        trainable = ("e2vpt.", "head.")
        self._initial = {n: p.detach().clone() for n, p in self.named_parameters()
                         if cfg.prune and n.startswith(trainable)}

    def no_weight_decay(self) -> set[str]:
        """The prompts are tokens and keys, not weights: no decay."""
        return {f"e2vpt.{name}" for name, _ in self.e2vpt.named_parameters()}

    def block(self, j: int, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """timm's ``Block.forward`` with block ``j``'s key-value prompts in its attention: ``(B, T, D)``."""
        keys, values = self.e2vpt.key_values(j, x.shape[0])
        return block_with_attention(block, x, lambda h: attention_with_kv(block.attn, h, keys, values))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        tokens = embed_tokens(self.backbone, x)
        tokens = blocks_with_prompts(self.backbone, tokens, self.e2vpt.visual(x.shape[0]), run_block=self.block)
        return pool(self.backbone, tokens)

    # ---- pruning and rewinding -----------------------------------------------------------------------

    def restart_epochs(self) -> tuple[int, ...]:
        return (self.cfg.prune_epoch,) if self.cfg.prune else ()

    def on_epoch_start(self, epoch: int, data: TrainingData) -> None:
        if self.cfg.prune and epoch == self.cfg.prune_epoch:
            self.prune(data)
            self.rewind()

    def importance(self, data: TrainingData) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean absolute gradient of the loss with respect to the token and segment masks over the training split.

        Eval mode (no dropout), hard labels, the masks as they are (all ones before pruning), the run's autocast.
        """
        masks = (self.e2vpt.token_mask, self.e2vpt.segment_mask)
        scores = [torch.zeros_like(m) for m in masks]
        batches, was_training = 0, self.training
        self.eval()
        try:
            for mask in masks:
                mask.requires_grad_(True)
            for images, labels in data.loader():
                with data.autocast():
                    loss = F.cross_entropy(self(images.to(data.device)), labels.to(data.device))
                for score, grad in zip(scores, torch.autograd.grad(loss, masks), strict=True):
                    score += grad.abs()
                batches += 1
        finally:
            for mask in masks:
                mask.requires_grad_(False)
            self.train(was_training)
        # summed over the processes' parts of the split, then the mean over all their batches
        batches = data.sum(torch.tensor(float(batches), device=scores[0].device))
        return data.sum(scores[0]) / batches.clamp(min=1), data.sum(scores[1]) / batches.clamp(min=1)

    def prune(self, data: TrainingData) -> None:
        """Mask the least important visual prompt tokens, then segments (see :func:`prune_masks`)."""
        token_score, segment_score = self.importance(data)
        token_mask, segment_mask = prune_masks(token_score.cpu(), segment_score.cpu(), self.cfg)
        self.e2vpt.token_mask.copy_(token_mask)
        self.e2vpt.segment_mask.copy_(segment_mask)

    @torch.no_grad()
    def rewind(self) -> None:
        """Every trainable tensor back to its initialisation (the masks stay)."""
        for name, param in self.named_parameters():
            if name in self._initial:
                param.copy_(self._initial[name])
