"""The pieces of a timm VisionTransformer's forward that methods recombine: embedding, blocks with prompt
tokens (VPT-deep style, used by InsVP, VPT and E2VPT), pooling. Calls timm's own sub-modules; copies none of its code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def embed_tokens(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` -> tokens ``(B, prefix + N, D)``, exactly as timm's ``forward_features`` begins."""
    x = backbone.patch_embed(x)
    x = backbone._pos_embed(x)
    x = backbone.patch_drop(x)
    return backbone.norm_pre(x)


def blocks_with_prompts(
    backbone: nn.Module,
    x: torch.Tensor,
    prompts: Sequence[torch.Tensor] | torch.Tensor = (),
    run_block: Callable[[int, nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run the blocks with prompt tokens inserted after the prefix (class/register) tokens.

    Block ``j < len(prompts)`` gets its own ``prompts[j]`` (``(B, P, D)``), replacing the outputs of the
    previous block's prompts; after the last prompted block the prompt outputs travel on through the
    remaining blocks, as in VPT-deep. They are dropped before the final norm, so the model's own pooling
    (class token or average) sees exactly the tokens it would without prompts.

    Args:
        backbone: a timm VisionTransformer.
        x: tokens ``(B, prefix + N, D)`` from :func:`embed_tokens`.
        prompts: per-block prompt tokens; empty = timm's plain forward.
        run_block: ``run_block(j, block, tokens)`` runs block ``j`` (a method that re-composes the blocks,
            e.g. E2VPT's key-value prompts); default ``block(tokens)``.

    Returns:
        Normalised tokens ``(B, prefix + N, D)``.
    """
    npt = backbone.num_prefix_tokens
    num_prompt = 0
    for j, block in enumerate(backbone.blocks):
        if j < len(prompts):
            p = prompts[j]
            # (B, prefix + P_prev + N, D) -> (B, prefix + P + N, D)
            x = torch.cat([x[:, :npt], p.to(x.dtype), x[:, npt + num_prompt :]], dim=1)
            num_prompt = p.shape[1]
        x = block(x) if run_block is None else run_block(j, block, x)
    if num_prompt:
        # (B, prefix + P + N, D) -> (B, prefix + N, D)
        x = torch.cat([x[:, :npt], x[:, npt + num_prompt :]], dim=1)
    return backbone.norm(x)


def pool(backbone: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B, T, D)`` -> pre-logit features ``(B, D)`` through the model's own pooling and ``fc_norm``."""
    return backbone.forward_head(tokens, pre_logits=True)


def patch_size(backbone: nn.Module) -> int:
    size = backbone.patch_embed.patch_size
    size = size if isinstance(size, int) else size[0]
    return int(size)
