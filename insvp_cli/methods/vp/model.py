"""The ``vp`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from torch import nn

from ...common.errors import ConfigError
from ..base import ImagePrompts, Method
from .config import VPConfig

_PAPER_PAD = 30
_PAPER_SIZE = 224


class PadPrompt(nn.Module):
    """The four border strips of ``count`` prompts; :meth:`forward` assembles them full-size, ``(count, 3, H, W)``."""

    def __init__(self, height: int, width: int, pad: int, channels: int = 3, count: int = 1):
        super().__init__()
        self.pad = pad
        self.top = nn.Parameter(torch.randn(count, channels, pad, width))
        self.bottom = nn.Parameter(torch.randn(count, channels, pad, width))
        self.left = nn.Parameter(torch.randn(count, channels, height - 2 * pad, pad))
        self.right = nn.Parameter(torch.randn(count, channels, height - 2 * pad, pad))

    def forward(self) -> torch.Tensor:
        count, channels, middle, width = *self.left.shape[:3], self.top.shape[3]
        centre = self.top.new_zeros(count, channels, middle, width - 2 * self.pad)
        # (n, 3, H - 2p, p) + (n, 3, H - 2p, W - 2p) + (n, 3, H - 2p, p) -> (n, 3, H - 2p, W)
        row = torch.cat([self.left, centre, self.right], dim=3)
        # (n, 3, p, W) + (n, 3, H - 2p, W) + (n, 3, p, W) -> (n, 3, H, W)
        return torch.cat([self.top, row, self.bottom], dim=2)


def frame_width(cfg_pad: int | None, height: int, width: int) -> int:
    """The frame width: ``cfg_pad``, or the paper's 30 px at 224 scaled with the shorter side (at least 1).

    Raises:
        ConfigError: a frame that leaves no centre.
    """
    pad = cfg_pad if cfg_pad is not None else max(1, round(_PAPER_PAD * min(height, width) / _PAPER_SIZE))
    if 2 * pad >= min(height, width):
        raise ConfigError(f"method.pad: {pad} px leaves no centre in a {height}x{width} input")
    return pad


class VP(Method):
    """``x + prompt`` into the frozen backbone; the prompt is zero inside the ``(H - 2p, W - 2p)`` centre."""

    prefix = "vp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: VPConfig):
        super().__init__(backbone, num_classes, cfg)
        height, width = backbone.patch_embed.img_size
        self.vp = PadPrompt(height, width, frame_width(cfg.pad, height, width))

    def no_weight_decay(self) -> set[str]:
        """The prompt is an input, not a weight: no decay, as for prompt tokens."""
        return {f"vp.{name}" for name, _ in self.vp.named_parameters()}

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts:
        # (1, 3, H, W) -> (B, 3, H, W)
        prompt = self.vp().to(x.dtype).expand_as(x)
        return ImagePrompts(image=x, prompt=prompt, prompted=x + prompt)
