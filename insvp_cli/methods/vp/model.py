"""The ``vp`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from torch import nn

from ...backbone.vit import pool
from ...errors import ConfigError
from ..base import ImagePrompts, Method
from .config import VPConfig

_PAPER_PAD = 30
_PAPER_SIZE = 224


class PadPrompt(nn.Module):
    """The four border strips of the prompt; :meth:`forward` assembles the full-size prompt ``(1, 3, H, W)``."""

    def __init__(self, height: int, width: int, pad: int, channels: int = 3):
        super().__init__()
        self.pad = pad
        self.top = nn.Parameter(torch.randn(1, channels, pad, width))
        self.bottom = nn.Parameter(torch.randn(1, channels, pad, width))
        self.left = nn.Parameter(torch.randn(1, channels, height - 2 * pad, pad))
        self.right = nn.Parameter(torch.randn(1, channels, height - 2 * pad, pad))

    def forward(self) -> torch.Tensor:
        channels, middle, width = self.left.shape[1], self.left.shape[2], self.top.shape[3]
        centre = self.top.new_zeros(1, channels, middle, width - 2 * self.pad)
        # (1, 3, H - 2p, p) + (1, 3, H - 2p, W - 2p) + (1, 3, H - 2p, p) -> (1, 3, H - 2p, W)
        row = torch.cat([self.left, centre, self.right], dim=3)
        # (1, 3, p, W) + (1, 3, H - 2p, W) + (1, 3, p, W) -> (1, 3, H, W)
        return torch.cat([self.top, row, self.bottom], dim=2)


class VP(Method):
    """``x + prompt`` into the frozen backbone; the prompt is zero inside the ``(H - 2p, W - 2p)`` centre."""

    prefix = "vp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: VPConfig):
        super().__init__(backbone, num_classes, cfg)
        height, width = backbone.patch_embed.img_size
        pad = cfg.pad if cfg.pad is not None else max(1, round(_PAPER_PAD * min(height, width) / _PAPER_SIZE))
        if 2 * pad >= min(height, width):
            raise ConfigError(f"method.pad: {pad} px leaves no centre in a {height}x{width} input")
        self.vp = PadPrompt(height, width, pad)

    def no_weight_decay(self) -> set[str]:
        """The prompt is an input, not a weight: no decay, as for prompt tokens."""
        return {f"vp.{name}" for name, _ in self.vp.named_parameters()}

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts:
        # (1, 3, H, W) -> (B, 3, H, W)
        prompt = self.vp().to(x.dtype).expand_as(x)
        return ImagePrompts(image=x, prompt=prompt, prompted=x + prompt)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool(self.backbone, self.backbone.forward_features(self.image_prompts(x).prompted))
