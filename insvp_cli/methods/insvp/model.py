"""The InsVP model: image-level prompts ``p_I`` on the input, feature-level prompts ``p_F`` in the blocks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...backbone.prompting import FeaturePrompting, feature_prompting
from ..base import ImagePrompts, Method
from ..layers import xavier_prompt
from .config import InsVPConfig
from .layers import GlobalPrompter, PatchPrompter, SpecificPrompter, simam


class InsVPPrompts(nn.Module):
    """The trainable parts of InsVP; every parameter lives under ``insvp.``.

    The feature prompts follow the backbone's stages (``features``): a ViT has one, so ``common_prompt`` is
    one tensor ``(N_F, L_p, D)``; a Swin Transformer has one per resolution, so ``common_prompt`` holds one
    tensor ``(n_s, L_p, C_s)`` per prompted stage, and ``G_s``, built at the first stage's width, gets one
    linear projection to each later stage's width (``specific_projections``).
    """

    def __init__(self, cfg: InsVPConfig, backbone: nn.Module, features: FeaturePrompting):
        super().__init__()
        widths = features.widths
        img_size = tuple(backbone.patch_embed.img_size)
        total = sum(features.depths)
        self.num_blocks = total if cfg.prompt_blocks is None else min(cfg.prompt_blocks, total)
        feature_tokens = cfg.prompt_len > 0 and self.num_blocks > 0
        # the first N_F blocks in order: how many of them fall in each stage
        remaining, self.prompted_per_stage = self.num_blocks if feature_tokens else 0, []
        for depth in features.depths:
            self.prompted_per_stage.append(min(depth, remaining))
            remaining -= self.prompted_per_stage[-1]
        stages = [s for s, n in enumerate(self.prompted_per_stage) if n > 0]

        self.patch_prompter = (
            PatchPrompter(features.prompt_patch, cfg.patch_hidden, cfg.dropout) if cfg.patch_prompter else None
        )
        self.global_prompter = (
            GlobalPrompter(cfg.global_hidden, cfg.global_kernels, cfg.global_dilations, cfg.dropout,
                           conv_impl=cfg.conv_impl)
            if cfg.global_prompter
            else None
        )
        self.common_prompt: nn.Parameter | nn.ParameterList | None = None
        if cfg.common_prompt and stages:
            tensors = [_common_init(cfg, self.prompted_per_stage[s], widths[s], features.token_patch)
                       for s in stages]
            self.common_prompt = tensors[0] if len(widths) == 1 else nn.ParameterList(tensors)
        self.specific_prompter = None
        self.specific_projections = None
        if cfg.specific_prompter and stages:
            self.specific_prompter = SpecificPrompter(cfg.prompt_len, widths[0], img_size, cfg.specific_kernels,
                                                      cfg.dropout, conv_impl=cfg.conv_impl)
            if len(widths) > 1:
                self.specific_projections = nn.ModuleList(
                    nn.Identity() if s == 0 else nn.Linear(widths[0], widths[s]) for s in stages
                )
        self.common_drop = nn.Dropout(cfg.dropout)

    def common_per_stage(self) -> list[torch.Tensor]:
        """``p_c`` of each prompted stage, ``(n_s, L_p, C_s)``; empty when ``p_c`` is off."""
        if self.common_prompt is None:
            return []
        return [self.common_prompt] if isinstance(self.common_prompt, nn.Parameter) else list(self.common_prompt)

    def specific_for_stage(self, p_s: torch.Tensor, stage: int) -> torch.Tensor:
        """``p_s`` ``(B, L_p, C_0)`` at stage ``stage``'s width ``(B, L_p, C_s)``."""
        return p_s if self.specific_projections is None else self.specific_projections[stage](p_s)


def _common_init(cfg: InsVPConfig, blocks: int, width: int, patch: int) -> nn.Parameter:
    if cfg.common_init != "uniform":
        return xavier_prompt(blocks, cfg.prompt_len, width, patch=patch)
    prompt = nn.Parameter(torch.empty(blocks, cfg.prompt_len, width))
    nn.init.uniform_(prompt, -1.0, 1.0)  # the release's init
    return prompt


class InsVP(Method):
    """InsVP on any timm VisionTransformer with a class token (docs/method.md §1) or SwinTransformer (§3).

    ``x -> SimAM? -> x~ = x + w_g G_g(x) + w_l G_l(x)``; ``p_s = G_s(x or x~)`` computed once;
    block ``j < N_F`` sees ``[cls, w_c p_c_j + w_s p_s, patches]``; the class token's output goes
    through the final norm and the head. On Swin the prompts enter every window of block ``j`` instead
    (:mod:`insvp_cli.backbone.swin`) and the model's average pooling feeds the head.
    """

    prefix = "insvp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: InsVPConfig):
        super().__init__(backbone, num_classes, cfg)
        self.features = feature_prompting(backbone)  # ViT or Swin, chosen once
        self.insvp = InsVPPrompts(cfg, backbone, self.features)

    def trainable_patterns(self) -> tuple[str, ...]:
        if self.cfg.freeze_specific_prompter:  # the release's optimizer never sees G_s (docs/method.md §2)
            return ("insvp.patch_prompter.*", "insvp.global_prompter.*", "insvp.common_prompt*", "head.*")
        return super().trainable_patterns()

    def no_weight_decay(self) -> set[str]:
        return {name for name, _ in self.named_parameters() if name.startswith("insvp.common_prompt")}

    def decays(self, name: str, param: nn.Parameter) -> bool:
        """``decay_all`` (release): every trainable tensor decays, as in its single AdamW group."""
        return True if self.cfg.decay_all else super().decays(name, param)

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts:
        """Image level (paper §3.2): ``p_I = w_g p_g + w_l p_l`` and the prompted image ``x + p_I``."""
        cfg, parts = self.cfg, self.insvp
        if cfg.simam:
            x = simam(x)
        named = {}
        if parts.global_prompter is not None:
            named["p_g"] = parts.global_prompter(x)
        if parts.patch_prompter is not None:
            named["p_l"] = parts.patch_prompter(x)
        weights = {"p_g": cfg.global_weight, "p_l": cfg.patch_weight}
        terms = [weights[k] * p for k, p in named.items()]
        p_i = sum(terms[1:], terms[0]) if terms else None
        return ImagePrompts(image=x, prompt=p_i, prompted=x + p_i if p_i is not None else x, parts=named)

    def specific_prompt(self, prompts: ImagePrompts) -> torch.Tensor | None:
        """``p_s = G_s(.)``: ``(B, L_p, D)`` (Swin: the first stage's width), once per forward, shared by all blocks."""
        if self.insvp.specific_prompter is None:
            return None
        source = prompts.prompted if self.cfg.specific_input == "prompted" else prompts.image
        return self.insvp.specific_prompter(source)

    def embed(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``specific-prompt``: ``p_s`` flattened ``(B, L_p * D)`` (paper Fig. 6); else the base's embeddings."""
        if name == "specific-prompt" and name in self.cfg.embeddings():
            # (B, L_p, D) -> (B, L_p * D)
            return self.specific_prompt(self.image_prompts(x)).flatten(1)
        return super().embed(x, name)

    def feature_prompts(self, p_s: torch.Tensor | Sequence[torch.Tensor] | None, batch: int) -> list[torch.Tensor]:
        """Feature level (paper §3.3): ``p_F_j = w_c p_c_j + w_s p_s`` for each of the first ``N_F`` blocks.

        ``p_s`` is one tensor shared by the blocks, or one per prompted block (``specific_per_block``).
        """
        cfg, parts = self.cfg, self.insvp
        common = parts.common_per_stage()
        if not common and p_s is None:
            return []
        shared = p_s is None or isinstance(p_s, torch.Tensor)
        prompts = []
        for stage, blocks in enumerate(parts.prompted_per_stage):
            if blocks == 0:
                break
            if shared:  # projected once per stage
                specific = [parts.specific_for_stage(p_s, stage) if p_s is not None else None] * blocks
            else:
                specific = [parts.specific_for_stage(p, stage) for p in p_s[len(prompts) : len(prompts) + blocks]]
            for j in range(blocks):
                terms = []
                if common:
                    # (L_p, C_s) -> (B, L_p, C_s), then dropout: each image draws its own mask
                    terms.append(cfg.common_weight * parts.common_drop(common[stage][j].expand(batch, -1, -1)))
                if specific[j] is not None:
                    terms.append(cfg.specific_weight * specific[j])
                prompts.append(sum(terms[1:], terms[0]))
        return prompts

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        image = self.image_prompts(x)
        if self.cfg.specific_per_block and self.training and self.insvp.specific_prompter is not None:
            # the release's G_s in every block: new dropout masks inside G_s for each prompted block
            p_s = [self.specific_prompt(image) for _ in range(self.insvp.num_blocks)]
        else:
            p_s = self.specific_prompt(image)
        return self.features.forward_features(self.backbone, image.prompted, self.feature_prompts(p_s, x.shape[0]))
