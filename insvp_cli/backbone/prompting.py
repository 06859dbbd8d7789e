"""How feature prompts enter a backbone: one small strategy per backbone family, chosen once per model.

A method that prompts the blocks (InsVP, VPT) asks :func:`feature_prompting` for the strategy of its
backbone and then deals only in *stages*: each stage has a token width and a number of blocks, and the
method hands over one prompt tensor ``(B, P, width)`` per prompted block, in block order. A ViT is one
stage; a Swin Transformer has one stage per resolution (docs/method.md §3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..common.errors import UsageError
from . import swin
from .vit import blocks_with_prompts, embed_tokens, patch_size, pool


class FeaturePrompting:
    """The shape of a backbone's blocks and its forward with prompts.

    Attributes:
        widths: token width of each stage.
        depths: number of blocks of each stage.
        token_patch: image pixels per token side at the input (VPT's prompt init uses it).
        prompt_patch: patch side of image-level prompters that work per patch (InsVP's ``G_l``).
    """

    widths: list[int]
    depths: list[int]
    token_patch: int
    prompt_patch: int

    def forward_features(self, backbone: nn.Module, images: torch.Tensor,
                         prompts: Sequence[torch.Tensor]) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` -> pooled pre-logit features ``(B, D)``.

        ``prompts[j]`` ``(B, P, widths[stage of j])`` enters block ``j`` (counting over all stages); no
        prompts gives the backbone's own forward.
        """
        raise NotImplementedError

    def per_stage(self, prompts: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Flat per-block prompts -> one list per stage."""
        out, start = [], 0
        for depth in self.depths:
            out.append(list(prompts[start : start + depth]))
            start += depth
        return out


class ViTPrompting(FeaturePrompting):
    """timm VisionTransformer: prompts after the class token, VPT-deep replacement per block."""

    def __init__(self, backbone: nn.Module):
        self.widths = [backbone.embed_dim]
        self.depths = [len(backbone.blocks)]
        self.token_patch = self.prompt_patch = patch_size(backbone)

    def forward_features(self, backbone, images, prompts):
        return pool(backbone, blocks_with_prompts(backbone, embed_tokens(backbone, images), prompts))


class SwinPrompting(FeaturePrompting):
    """timm SwinTransformer: VPT's Swin scheme (see :mod:`insvp_cli.backbone.swin`).

    Per-patch image prompters use 4 x the patch (16 px on Swin-B, the release's ``G_l`` patch): the 4 px
    input patches would make them almost pixel-wise; 16 px is also the token size of Swin's third stage.
    """

    def __init__(self, backbone: nn.Module):
        self.widths = swin.stage_widths(backbone)
        self.depths = swin.stage_depths(backbone)
        self.token_patch = patch_size(backbone)
        self.prompt_patch = 4 * self.token_patch

    def forward_features(self, backbone, images, prompts):
        return pool(backbone, swin.swin_features_with_prompts(backbone, images, self.per_stage(prompts)))


def feature_prompting(backbone: nn.Module) -> FeaturePrompting:
    """The strategy for ``backbone``'s family.

    Raises:
        UsageError: a backbone family that takes no feature prompts.
    """
    if swin.is_swin(backbone):
        return SwinPrompting(backbone)
    if hasattr(backbone, "blocks") and getattr(backbone, "has_class_token", False):
        return ViTPrompting(backbone)
    raise UsageError(f"backbone.name: feature prompts need a timm ViT with a class token or a timm SwinTransformer; "
                     f"{type(backbone).__name__} is neither")
