"""The pieces of a timm VisionTransformer's forward that methods recombine: embedding, blocks with prompt
tokens (VPT-deep style, used by InsVP, VPT and E2VPT), a block and its attention re-composed from their
sub-modules (E2VPT's key-value prompts, Yoo et al.'s temperatures), pooling. Calls timm's own sub-modules.
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


def attention(attn: nn.Module, x: torch.Tensor, *, temperature: torch.Tensor | None = None,
              prefix_kv: tuple[torch.Tensor, torch.Tensor] | None = None, scale: float | None = None) -> torch.Tensor:
    """timm's ``Attention.forward`` on tokens ``(B, N, D)``, with the changes prompt methods make inside it.

    Args:
        attn: a timm ``Attention`` (its ``gate``, ``q_norm``/``k_norm`` and ``norm`` are applied as timm does).
        temperature: a scalar tensor the attention logits are divided by (Yoo et al.): ``q`` scaled by ``1 / t``
            after its norm.
        prefix_kv: keys and values ``(B, H, P, hd)`` put before the tokens' own (E2VPT); queries stay the tokens'.
        scale: the logits' scale (``None``: ``hd ** -0.5``, as timm's).
    """
    b, n, _ = x.shape
    gate = attn.gate(x).sigmoid() if getattr(attn, "gate", None) is not None else None
    # (B, N, 3 * H * hd) -> 3 x (B, H, N, hd)
    q, k, v = attn.qkv(x).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if temperature is not None:
        q = q / temperature.to(q.dtype)
    if prefix_kv is not None:  # (B, H, P, hd) + (B, H, N, hd) -> (B, H, P + N, hd)
        k = torch.cat([prefix_kv[0].to(k.dtype), k], dim=2)
        v = torch.cat([prefix_kv[1].to(v.dtype), v], dim=2)
    out = nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0,
                                                     scale=scale)
    # (B, H, N, hd) -> (B, N, H * hd)
    out = getattr(attn, "norm", nn.Identity())(out.transpose(1, 2).reshape(b, n, attn.num_heads * attn.head_dim))
    if gate is not None:
        out = out * gate
    return attn.proj_drop(attn.proj(out))


def block_with_attention(block: nn.Module, x: torch.Tensor,
                         attend: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """timm's pre-norm ``Block.forward`` on ``(B, T, D)`` with ``attend`` in place of ``block.attn``."""
    x = x + block.drop_path1(block.ls1(attend(block.norm1(x))))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


def pool(backbone: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B, T, D)`` -> pre-logit features ``(B, D)`` through the model's own pooling and ``fc_norm``."""
    return backbone.forward_head(tokens, pre_logits=True)


def patch_size(backbone: nn.Module) -> int:
    size = backbone.patch_embed.patch_size
    size = size if isinstance(size, int) else size[0]
    return int(size)
