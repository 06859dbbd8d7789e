"""Prompt tokens in a timm Swin Transformer, as VPT prompts Swin (Jia et al., "Visual Prompt Tuning", ECCV 2022).

InsVP (ACM MM 2024, Table 3) uses this scheme for its feature prompts on Swin-B. The blocks run through
their own sub-modules (``norm1``, ``attn.qkv``, the relative-position bias, ``attn.proj``, ``norm2``,
``mlp``, drop paths) and timm's window helpers; nothing of ``swin_transformer.py`` is copied or forked.

The scheme:

- each stage has its own prompt width (Swin-B: 128 / 256 / 512 / 1024); block ``j`` of a stage may be
  given new prompts ``(B, P, C)``, which replace the outputs of the previous block's prompts (deep mode);
- in window attention the same ``P`` prompts are prepended to every window; the relative-position bias
  and the shifted-window mask are zero-padded at the prompt positions, so prompts see, and are seen by,
  every token of every window and are never masked;
- the prompt outputs of all windows of an image are averaged; norms and the MLP treat prompts like tokens;
- prompts that are not replaced travel on, through patch merging too, as four copies of themselves
  (the merged 2x2 neighbourhood) -> ``norm`` -> ``reduction``, as VPT does;
- the final norm and the model's own pooling see the image tokens only, so a run without prompts is
  timm's forward exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer, SwinTransformerBlock, window_partition, window_reverse
from torch import nn


def is_swin(backbone: nn.Module) -> bool:
    return isinstance(backbone, SwinTransformer)


def stage_widths(backbone: SwinTransformer) -> list[int]:
    """Token width of each stage (Swin-B: 128, 256, 512, 1024)."""
    return [stage.blocks[0].dim for stage in backbone.layers]


def stage_depths(backbone: SwinTransformer) -> list[int]:
    """Blocks of each stage (Swin-B: 2, 2, 18, 2)."""
    return [len(stage.blocks) for stage in backbone.layers]


def swin_features_with_prompts(
    backbone: SwinTransformer, x: torch.Tensor, prompts: Sequence[Sequence[torch.Tensor]] = ()
) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` -> normalised feature map ``(B, h, w, C)``, with prompts in the blocks.

    Args:
        backbone: a timm SwinTransformer.
        x: images.
        prompts: ``prompts[s][j]`` is ``(B, P, C_s)``, the new prompts of block ``j`` of stage ``s``;
            stages and blocks past the end of the lists get none (earlier prompts travel on).

    Returns:
        What ``backbone.forward_features`` returns; ``backbone.forward_head`` pools it.
    """
    x = backbone.patch_embed(x)  # (B, h, w, C_0)
    p: torch.Tensor | None = None
    for s, stage in enumerate(backbone.layers):
        x = stage.downsample(x)
        if p is not None and not isinstance(stage.downsample, nn.Identity):
            p = merge_prompts(stage.downsample, p)
        stage_prompts = prompts[s] if s < len(prompts) else ()
        for j, block in enumerate(stage.blocks):
            if j < len(stage_prompts):
                p = stage_prompts[j].to(x.dtype)
            x, p = block_with_prompts(block, x, p) if p is not None else (block(x), None)
    return backbone.norm(x)


def block_with_prompts(
    block: SwinTransformerBlock, x: torch.Tensor, p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Swin block on image tokens ``x`` ``(B, h, w, C)`` and prompt tokens ``p`` ``(B, P, C)``.

    The block's own order: ``t + drop_path(attn(norm1(t)))``, then ``t + drop_path(mlp(norm2(t)))``, with
    prompts and image tokens in one sequence so that drop path draws one decision per sample for both.
    """
    b, h, w, c = x.shape
    num_prompts = p.shape[1]
    attn_x, attn_p = window_attention_with_prompts(block, block.norm1(x), block.norm1(p))
    # (B, P, C) + (B, h, w, C) -> (B, P + h*w, C)
    t = torch.cat([p, x.reshape(b, h * w, c)], dim=1)
    t = t + block.drop_path1(torch.cat([attn_p, attn_x.reshape(b, h * w, c)], dim=1))
    t = t + block.drop_path2(block.mlp(block.norm2(t)))
    # (B, P + h*w, C) -> (B, h, w, C), (B, P, C)
    return t[:, num_prompts:].reshape(b, h, w, c), t[:, :num_prompts]


def window_attention_with_prompts(
    block: SwinTransformerBlock, x: torch.Tensor, p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Shifted) window attention of normalised ``x`` ``(B, h, w, C)`` with prompts ``p`` ``(B, P, C)`` in every window.

    Returns:
        The attention outputs of the image tokens ``(B, h, w, C)`` and of the prompts averaged over the
        windows ``(B, P, C)``.
    """
    b, h, w, c = x.shape
    num_prompts = p.shape[1]
    ws, shift = block.window_size, block.shift_size
    has_shift = any(shift)
    shifted = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2)) if has_shift else x
    # pad to whole windows, as timm does for sizes that are not multiples of the window
    shifted = F.pad(shifted, (0, 0, 0, (ws[1] - w % ws[1]) % ws[1], 0, (ws[0] - h % ws[0]) % ws[0]))
    hp, wp = shifted.shape[1:3]
    # (B, hp, wp, C) -> (B*nW, N, C), windows of one image consecutive
    windows = window_partition(shifted, ws).reshape(-1, block.window_area, c)
    num_windows = windows.shape[0] // b
    # the same prompts in every window: (B, P, C) -> (B*nW, P, C)
    window_prompts = p.unsqueeze(1).expand(b, num_windows, num_prompts, c).reshape(b * num_windows, num_prompts, c)
    mask = block.get_attn_mask(shifted) if getattr(block, "dynamic_mask", False) else block.attn_mask
    out = _attention(block.attn, torch.cat([window_prompts, windows], dim=1), num_prompts, mask)
    # (B*nW, P, C) -> (B, nW, P, C) -> (B, P, C): one output per prompt, averaged over the image's windows
    out_p = out[:, :num_prompts].reshape(b, num_windows, num_prompts, c).mean(dim=1)
    # (B*nW, N, C) -> (B, hp, wp, C) -> (B, h, w, C)
    out_x = window_reverse(out[:, num_prompts:].reshape(-1, ws[0], ws[1], c), ws, hp, wp)[:, :h, :w]
    if has_shift:
        out_x = torch.roll(out_x, shifts=shift, dims=(1, 2))
    return out_x, out_p


def _attention(attn: nn.Module, x: torch.Tensor, num_prompts: int, mask: torch.Tensor | None) -> torch.Tensor:
    """timm's ``WindowAttention.forward`` on ``(B*nW, P + N, C)`` with bias and mask zero-padded at the prompts."""
    bw, t, _ = x.shape
    heads = attn.num_heads
    # (B*nW, T, 3*C) -> (3, B*nW, heads, T, head_dim)
    q, k, v = attn.qkv(x).reshape(bw, t, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    # (1, heads, N, N) -> (1, heads, T, T): prompt rows and columns get no positional bias
    bias = F.pad(attn._get_rel_pos_bias(), (num_prompts, 0, num_prompts, 0))
    if mask is not None:
        num_windows = mask.shape[0]
        # (nW, N, N) -> (nW, T, T): zeros at the prompts, so no window's shift mask ever hides them
        mask = F.pad(mask, (num_prompts, 0, num_prompts, 0))
        # (nW, T, T) -> (B*nW, heads, T, T), windows of one image consecutive as in window_partition
        mask = mask.view(1, num_windows, 1, t, t).expand(bw // num_windows, -1, heads, -1, -1)
        bias = bias + mask.reshape(-1, heads, t, t)
    if attn.fused_attn:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                             dropout_p=attn.attn_drop.p if attn.training else 0.0)
    else:
        scores = (q * attn.scale) @ k.transpose(-2, -1) + bias
        out = attn.attn_drop(scores.softmax(dim=-1)) @ v
    # (B*nW, heads, T, head_dim) -> (B*nW, T, C)
    out = out.transpose(1, 2).reshape(bw, t, -1)
    return attn.proj_drop(attn.proj(out))


def merge_prompts(downsample: nn.Module, p: torch.Tensor) -> torch.Tensor:
    """Prompts ``(B, P, C)`` through timm's PatchMerging as four copies: ``(B, P, 4C)`` -> norm -> ``(B, P, 2C)``."""
    return downsample.reduction(downsample.norm(torch.cat([p, p, p, p], dim=-1)))
