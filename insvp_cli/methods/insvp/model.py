"""The InsVP model: image-level prompts ``p_I`` on the input, feature-level prompts ``p_F`` in the blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..base import Method, blocks_with_prompts, embed_tokens, patch_size, pool
from .config import InsVPConfig
from .layers import GlobalPrompter, PatchPrompter, SpecificPrompter, simam


@dataclass
class ImagePrompts:
    """What InsVP does to one batch of images (used by the figures). Absent components are ``None``."""

    image: torch.Tensor
    global_prompt: torch.Tensor | None
    patch_prompt: torch.Tensor | None
    prompt: torch.Tensor | None
    prompted: torch.Tensor


class InsVPPrompts(nn.Module):
    """The trainable parts of InsVP; every parameter lives under ``insvp.``."""

    def __init__(self, cfg: InsVPConfig, backbone: nn.Module):
        super().__init__()
        dim = backbone.embed_dim
        depth = len(backbone.blocks)
        img_size = tuple(backbone.patch_embed.img_size)
        patch = patch_size(backbone)
        self.num_blocks = depth if cfg.prompt_blocks is None else min(cfg.prompt_blocks, depth)
        feature_tokens = cfg.prompt_len > 0 and self.num_blocks > 0
        self.patch_prompter = PatchPrompter(patch, cfg.patch_hidden, cfg.dropout) if cfg.patch_prompter else None
        self.global_prompter = (
            GlobalPrompter(cfg.global_hidden, cfg.global_kernels, cfg.global_dilations, cfg.dropout)
            if cfg.global_prompter
            else None
        )
        self.common_prompt = None
        if cfg.common_prompt and feature_tokens:
            self.common_prompt = nn.Parameter(torch.empty(self.num_blocks, cfg.prompt_len, dim))
            if cfg.common_init == "uniform":
                nn.init.uniform_(self.common_prompt, -1.0, 1.0)
            else:  # VPT: xavier-uniform over (patch area x 3 + D)
                bound = math.sqrt(6.0 / float(3 * patch * patch + dim))
                nn.init.uniform_(self.common_prompt, -bound, bound)
        self.specific_prompter = (
            SpecificPrompter(cfg.prompt_len, dim, img_size, cfg.specific_kernels, cfg.dropout)
            if cfg.specific_prompter and feature_tokens
            else None
        )
        self.common_drop = nn.Dropout(cfg.dropout)


class InsVP(Method):
    """InsVP on any timm VisionTransformer (SPEC §1).

    ``x -> SimAM? -> x~ = x + w_g G_g(x) + w_l G_l(x)``; ``p_s = G_s(x or x~)`` computed once;
    block ``j < N_F`` sees ``[cls, w_c p_c_j + w_s p_s, patches]``; the class token's output goes
    through the final norm and the head.
    """

    prefix = "insvp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: InsVPConfig):
        super().__init__(backbone, num_classes, cfg)
        if not getattr(backbone, "has_class_token", False) or not hasattr(backbone, "blocks"):
            raise ValueError(f"InsVP needs a ViT with a class token; {type(backbone).__name__} has none")
        self.insvp = InsVPPrompts(cfg, backbone)

    def trainable_patterns(self) -> tuple[str, ...]:
        if self.cfg.freeze_specific_prompter:  # the release's optimizer never sees G_s (SPEC §1)
            return ("insvp.patch_prompter.*", "insvp.global_prompter.*", "insvp.common_prompt", "head.*")
        return super().trainable_patterns()

    def no_weight_decay(self) -> set[str]:
        return {"insvp.common_prompt"} if self.insvp.common_prompt is not None else set()

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts:
        """Image level (paper §3.2): ``p_I = w_g p_g + w_l p_l`` and the prompted image ``x + p_I``."""
        cfg, parts = self.cfg, self.insvp
        if cfg.simam:
            x = simam(x)
        p_g = parts.global_prompter(x) if parts.global_prompter is not None else None
        p_l = parts.patch_prompter(x) if parts.patch_prompter is not None else None
        terms = [w * p for w, p in ((cfg.global_weight, p_g), (cfg.patch_weight, p_l)) if p is not None]
        p_i = sum(terms[1:], terms[0]) if terms else None
        prompted = x + p_i if p_i is not None else x
        return ImagePrompts(image=x, global_prompt=p_g, patch_prompt=p_l, prompt=p_i, prompted=prompted)

    def specific_prompt(self, prompts: ImagePrompts) -> torch.Tensor | None:
        """``p_s = G_s(.)``: ``(B, L_p, D)``, once per forward and shared by every prompted block."""
        if self.insvp.specific_prompter is None:
            return None
        source = prompts.prompted if self.cfg.specific_input == "prompted" else prompts.image
        return self.insvp.specific_prompter(source)

    def feature_prompts(self, p_s: torch.Tensor | None, batch: int) -> list[torch.Tensor]:
        """Feature level (paper §3.3): ``p_F_j = w_c p_c_j + w_s p_s`` for each of the first ``N_F`` blocks."""
        cfg, p_c = self.cfg, self.insvp.common_prompt
        if p_c is None and p_s is None:
            return []
        prompts = []
        for j in range(self.insvp.num_blocks):
            terms = []
            if p_c is not None:
                # (L_p, D) -> (B, L_p, D)
                terms.append(cfg.common_weight * self.insvp.common_drop(p_c[j]).expand(batch, -1, -1))
            if p_s is not None:
                terms.append(cfg.specific_weight * p_s)
            prompts.append(sum(terms[1:], terms[0]))
        return prompts

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        image = self.image_prompts(x)
        p_s = self.specific_prompt(image)
        tokens = embed_tokens(self.backbone, image.prompted)
        tokens = blocks_with_prompts(self.backbone, tokens, self.feature_prompts(p_s, x.shape[0]))
        return pool(self.backbone, tokens)
