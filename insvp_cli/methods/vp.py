"""Visual prompting with a padding prompt (Bahng et al., "Exploring Visual Prompts for Adapting
Large-Scale Models", arXiv 2203.17274, 2022).

A learnable frame of width ``p`` around the image border is added to every (normalised) input image;
the centre stays untouched. Four tensors make the frame: top and bottom ``(3, p, W)``, left and right
``(3, H - 2p, p)``, initialised from a standard normal as in the paper's code. At 224 px with ``p = 30``
that is 69,840 parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConfigError, MethodConfig
from . import register_method
from .base import Method, pool

_PAPER_PAD = 30
_PAPER_SIZE = 224


@dataclass
class VPConfig(MethodConfig):
    """Padding-prompt hyper-parameters.

    Attributes:
        pad: the frame width ``p`` in pixels; ``None``: the paper's 30 px at 224 px, scaled with the
            shorter input side (4 px at 32 px), at least 1.
    """

    name: str = "vp"
    pad: int | None = None

    def __post_init__(self) -> None:
        if self.pad is not None and self.pad < 1:
            raise ConfigError(f"method.pad: {self.pad} must be >= 1 (or null to scale the paper's 30 px at 224)")


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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # (B, 3, H, W) + (1, 3, H, W)
        return pool(self.backbone, self.backbone.forward_features(x + self.vp().to(x.dtype)))


register_method("vp", VPConfig, VP)
