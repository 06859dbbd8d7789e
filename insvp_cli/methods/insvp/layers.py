"""InsVP's prompters: patch prompter ``G_l``, global prompter ``G_g``, specific prompter ``G_s``, and SimAM."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .fftconv import PromptConv2d
from .pooling import adaptive_max_pool2d

# The release's G_s geometry at 224 px and width 768 (docs/method.md §2): crop 8 px, pool to 52x52, crop 2 px,
# pool to 16x16; three channels of 16x16 make one 768-wide token.
_REF_SIZE = 224
_REF_CROP1 = 8
MID_GRID = 52
CROP2 = 2
_REF_GRID = 16
_CHANNELS_PER_TOKEN = 3


def simam(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Parameter-free SimAM attention, per image and channel over H, W (Yang et al., ICML 2021)."""
    n = x.shape[-2] * x.shape[-1] - 1
    d = (x - x.mean(dim=(-2, -1), keepdim=True)).pow(2)
    energy = d / (4 * (d.sum(dim=(-2, -1), keepdim=True) / n + eps)) + 0.5
    return x * torch.sigmoid(energy)


class PatchPrompter(nn.Module):
    """``G_l``: two fully connected layers applied to every non-overlapping ``p x p`` patch independently.

    Args:
        patch: patch size (the backbone's, so prompt patches align with tokens).
        hidden: hidden width.
        dropout: dropout on the assembled prompt.
        channels: image channels.
    """

    def __init__(self, patch: int, hidden: int, dropout: float, channels: int = 3):
        super().__init__()
        self.patch = patch
        dim = channels * patch * patch
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.patch
        gh, gw = h // p, w // p
        # (B, C, H, W) -> (B, C, gh, p, gw, p) -> (B, gh, gw, C, p, p) -> (B*gh*gw, C*p*p): channel-major patches
        t = x.reshape(b, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(b * gh * gw, c * p * p)
        t = self.fc2(F.relu(self.fc1(t)))
        # (B*gh*gw, C*p*p) -> (B, gh, gw, C, p, p) -> (B, C, gh, p, gw, p) -> (B, C, H, W): laid back in patch order
        t = t.reshape(b, gh, gw, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)
        return self.drop(t)


class GlobalPrompter(nn.Module):
    """``G_g``: two (dilated) convolutions ``C -> hidden -> C`` with a ReLU between and Dropout after.

    Args:
        hidden: hidden channels.
        kernels: the two kernel sizes (odd).
        dilations: the two dilations.
        dropout: dropout on the output.
        channels: image channels.
        conv_impl: ``auto``, ``direct`` or ``fft`` (:class:`~insvp_cli.methods.insvp.fftconv.PromptConv2d`).
    """

    def __init__(self, hidden: int, kernels: Sequence[int], dilations: Sequence[int], dropout: float,
                 channels: int = 3, conv_impl: str = "auto"):
        super().__init__()
        (k1, k2), (d1, d2) = kernels, dilations
        self.conv1 = PromptConv2d(channels, hidden, k1, padding=d1 * (k1 // 2), dilation=d1, impl=conv_impl)
        self.conv2 = PromptConv2d(hidden, channels, k2, padding=d2 * (k2 // 2), dilation=d2, impl=conv_impl)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.conv2(F.relu(self.conv1(x))))


class SpecificPrompter(nn.Module):
    """``G_s``: three convolutions with pooling, mapping an image to ``L_p`` tokens of width ``D``.

    At 224 px and ``D = 768`` this is the release's network exactly (docs/method.md §2). It generalises by
    (a) scaling the first crop with the input size and pooling adaptively to the same 52x52 grid, and
    (b) ending on an ``s x s`` grid with ``3 s^2 = D`` when ``D / 3`` is a square (768 -> 16, 192 -> 8,
    48 -> 4), else on 16x16 followed by one linear projection 768 -> ``D``.

    Args:
        prompt_len: ``L_p``.
        embed_dim: ``D``, the backbone's token width.
        img_size: input height and width.
        kernels: the three kernel sizes (odd).
        dropout: dropout after each pooling.
        conv_impl: ``auto``, ``direct`` or ``fft`` (:class:`~insvp_cli.methods.insvp.fftconv.PromptConv2d`).
    """

    def __init__(self, prompt_len: int, embed_dim: int, img_size: tuple[int, int], kernels: Sequence[int],
                 dropout: float, conv_impl: str = "auto"):
        super().__init__()
        k1, k2, k3 = kernels
        ch = _CHANNELS_PER_TOKEN * prompt_len
        self.prompt_len = prompt_len
        self.crop = tuple(round(_REF_CROP1 * s / _REF_SIZE) for s in img_size)
        self.conv1 = PromptConv2d(3, prompt_len, k1, padding=k1 // 2, impl=conv_impl)
        self.conv2 = PromptConv2d(prompt_len, ch, k2, padding=k2 // 2, impl=conv_impl)
        self.conv3 = PromptConv2d(ch, ch, k3, padding=k3 // 2, impl=conv_impl)
        self.drop = nn.Dropout(dropout)
        side = math.isqrt(embed_dim // _CHANNELS_PER_TOKEN)
        if embed_dim % _CHANNELS_PER_TOKEN == 0 and side * side * _CHANNELS_PER_TOKEN == embed_dim:
            self.grid, self.proj = side, nn.Identity()
        else:
            self.grid = _REF_GRID
            self.proj = nn.Linear(_CHANNELS_PER_TOKEN * _REF_GRID**2, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        # the release crops each convolution's output; only the outputs kept are computed. LeakyReLU in place: a
        # convolution's backward does not need its output, so one map of the largest size is kept, not two
        x = F.leaky_relu(self.conv1.cropped(x, self.crop), inplace=True)  # (B, L, H - 2 crop_h, W - 2 crop_w)
        # at 224: (B, L, 208, 208) -> (B, L, 52, 52), identical to the release's MaxPool(4)
        x = self.drop(_max_pool(x, MID_GRID))
        x = F.leaky_relu(self.conv2.cropped(x, (CROP2, CROP2)), inplace=True)  # (B, 3L, 48, 48)
        # at D = 768: (B, 3L, 48, 48) -> (B, 3L, 16, 16), identical to the release's MaxPool(3)
        x = self.drop(_max_pool(x, self.grid))
        x = self.conv3(x)  # (B, 3L, s, s)
        # (B, 3L, s, s) -> (B, L, 3 s^2) in memory order: token t holds channels 3t..3t+2
        x = x.reshape(b, self.prompt_len, -1)
        return self.proj(x)  # (B, L, D)


def _max_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """Adaptive max pooling to ``size x size``; under deterministic algorithms (``train.deterministic``) from operators
    with a deterministic CUDA backward (``max_pool2d`` where the sizes divide, as at 224 px; else a gather), which
    ``adaptive_max_pool2d`` lacks. The values are the same either way."""
    if torch.are_deterministic_algorithms_enabled():
        return adaptive_max_pool2d(x, (size, size))[0]
    return F.adaptive_max_pool2d(x, size)
