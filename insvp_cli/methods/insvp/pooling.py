"""``adaptive_max_pool2d`` (InsVP's ``G_s``) from operators every ONNX runtime has: a gather and a max with
identical values, used while exporting a model (:mod:`insvp_cli.use.export`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def adaptive_max_pool2d(x: torch.Tensor, output_size: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``aten.adaptive_max_pool2d`` (values and flat indices) from operators every ONNX runtime has.

    Output cell ``(i, j)`` covers rows ``floor(i H / h) .. ceil((i + 1) H / h) - 1`` and the same for
    columns, as in PyTorch. A window shorter than the longest is padded by repeating its last row or
    column, which leaves its maximum unchanged, so one gather of fixed width and one max compute every
    cell, also when the output is larger than the input. Sizes that divide evenly use ``max_pool2d``.
    """
    height, width = x.shape[-2:]
    out_h, out_w = output_size
    if height % out_h == 0 and width % out_w == 0:
        return F.max_pool2d(x, (height // out_h, width // out_w), return_indices=True)
    rows, cols = _windows(height, out_h, x.device), _windows(width, out_w, x.device)  # (h, kh), (w, kw)
    # (h, kh) x (w, kw) -> (h, w, kh*kw): flat input positions of each output cell's window
    window = (rows[:, None, :, None] * width + cols[None, :, None, :]).reshape(out_h, out_w, -1)
    # (..., H, W) -> (..., H*W) -> (..., h, w, kh*kw)
    patches = x.flatten(-2).index_select(-1, window.flatten()).unflatten(-1, window.shape)
    values, arg = patches.max(dim=-1)
    indices = window.expand(*x.shape[:-2], *window.shape).gather(-1, arg.unsqueeze(-1)).squeeze(-1)
    return values, indices


def _windows(size: int, out: int, device: torch.device) -> torch.Tensor:
    """``(out, k)`` input positions of each adaptive-pooling window, the last one repeated to the longest length."""
    longest = max(-(-(i + 1) * size // out) - i * size // out for i in range(out))
    i = torch.arange(out, device=device)
    start, end = i * size // out, ((i + 1) * size + out - 1) // out
    return torch.minimum(start[:, None] + torch.arange(longest, device=device), end[:, None] - 1)
