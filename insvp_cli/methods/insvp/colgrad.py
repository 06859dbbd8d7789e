"""A convolution over an image whose gradient to the image is computed column by column of its kernel, on CPU.

InsVP (ACM MM 2024) convolves the prompted image itself: the release's specific prompter ``G_s`` starts with a 7x7
convolution from the image's 3 channels to ``L_p`` (16), and training needs its gradient to the image (it flows on
to ``G_g`` and ``G_l``). oneDNN computes that gradient as a convolution whose outputs are the image's 3 channels,
which uses its vector units poorly: at 224 px, batch 4, one thread, it takes 39 ms against 8 ms for the forward.

The same gradient as one convolution with ``k_w * C_in`` outputs followed by ``k_w`` shifted sums is about twice
as fast there (``benchmarks/profile_insvp.py``): the gradient to the input is the transposed convolution
``dx[c, y + i d_h, x + j d_w] += W[o, c, i, j] g[o, y, x]``; for each kernel column ``j`` the sum over ``o`` and
``i`` is a ``k_h x 1`` convolution of ``g`` along its rows (the column's taps flipped), all columns in one
``conv2d`` call; column ``j``'s result then lands ``j d_w`` pixels to the right. Equal to ``conv2d``'s gradient to
float32 rounding (``tests/test_fftconv.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# where it wins on CPU (benchmarks/profile_insvp.py; 224 px, batch 4, one thread): few input channels and at least
# twice as many outputs (3 -> 16 7x7 2.2x, 3 -> 6 5x5 dilated 1.7x, 3 -> 48 3x3 1.9x); 3 -> 4 and 6 -> 3 lose
MAX_IN_CHANNELS = 4
MIN_OUT_PER_IN = 2


def prefers_columns(in_channels: int, out_channels: int, device: torch.device) -> bool:
    """Whether the input gradient by kernel columns is the faster one for this convolution on ``device``."""
    return device.type == "cpu" and in_channels <= MAX_IN_CHANNELS and out_channels >= MIN_OUT_PER_IN * in_channels


def input_grad_by_columns(grad: torch.Tensor, weight: torch.Tensor, input_size: tuple[int, int],
                          padding: tuple[int, int], dilation: tuple[int, int]) -> torch.Tensor:
    """The gradient to the input of ``conv2d(x, weight, padding=padding, dilation=dilation)`` (stride 1).

    Args:
        grad: the output's gradient ``(B, C_out, H_out, W_out)``.
        weight: ``(C_out, C_in, k_h, k_w)``.
        input_size: ``(H, W)`` of ``x``.
        padding, dilation: those of the forward.

    Returns:
        ``(B, C_in, H, W)``.
    """
    out_ch, in_ch, kh, kw = weight.shape
    (dh, dw), (ph, pw) = dilation, padding
    out_w = grad.shape[-1]
    # (C_out, C_in, k_h, k_w) -> (k_w * C_in, C_out, k_h, 1): output j * C_in + c is column j's taps for channel c,
    # rows flipped (a transposed convolution along the rows is a convolution with the taps reversed)
    columns = weight.flip(2).permute(3, 1, 0, 2).reshape(kw * in_ch, out_ch, kh, 1)
    # (B, k_w * C_in, H_out + d_h (k_h - 1), W_out): every column's contribution, rows already in place
    z = F.conv2d(grad, columns, padding=(dh * (kh - 1), 0), dilation=(dh, 1))
    # the transposed convolution's whole output: the input padded by ``padding`` on every side
    full = grad.new_zeros(grad.shape[0], in_ch, z.shape[-2], out_w + dw * (kw - 1))
    for j in range(kw):
        full[..., j * dw : j * dw + out_w] += z[:, j * in_ch : (j + 1) * in_ch]
    return full[..., ph : ph + input_size[0], pw : pw + input_size[1]]


class _ColumnGradConv2d(torch.autograd.Function):
    """``conv2d`` forward; backward: weights and bias by ``conv2d``'s own backward, the input by columns."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding, dilation):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (padding, dilation, bias is not None)
        return F.conv2d(x, weight, bias, 1, padding, dilation)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        padding, dilation, has_bias = ctx.geometry
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dw = db = None
        if need_w or need_b:
            _, dw, db = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if has_bias else None, (1, 1), padding, dilation, False, (0, 0),
                1, (False, need_w, need_b))
        dx = input_grad_by_columns(grad, weight, x.shape[-2:], padding, dilation) if need_x else None
        return dx, dw, db, None, None


def conv2d_column_grad(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int],
                       dilation: tuple[int, int]) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, 1, padding, dilation)``, with the input's gradient by :func:`input_grad_by_columns`.

    The same forward bit for bit; under autocast, or for other dtypes than float32, plain ``conv2d``."""
    if x.dtype != torch.float32 or torch.is_autocast_enabled(x.device.type):
        return F.conv2d(x, weight, bias, 1, padding, dilation)
    return _ColumnGradConv2d.apply(x, weight, bias, tuple(padding), tuple(dilation))
