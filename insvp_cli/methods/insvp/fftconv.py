"""Large-kernel convolutions of InsVP's prompters as FFT convolutions where that is faster.

InsVP (ACM MM 2024) prompts the image with convolutions over the whole input: the release's global prompter
``G_g`` runs an 11x11 and a 25x25 convolution at 224 px, the ``paper`` preset 5x5 ones dilated to 9x9 and
17x17. A direct convolution costs ``k^2`` multiply-adds per output and channel pair, an FFT one the same for any
``k``: with ``torch.fft`` the 6 -> 3 channel 25x25 convolution at 224 px runs forward and backward more than
ten times faster on a CPU (``benchmarks/profile_insvp.py``). Both compute the same cross-correlation (what
``F.conv2d`` computes), equal to float32 rounding.

:class:`PromptConv2d` is an ``nn.Conv2d`` (same parameters, same state-dict keys, so checkpoints do not change)
whose ``impl`` chooses: ``direct`` (``F.conv2d``), ``fft`` or ``auto`` (:func:`prefers_fft`; on CPU also
channels-last tensors and, for a convolution of the image that needs its gradient, :mod:`.colgrad`). While a model
is exported (ONNX, ``torch.export``) it always runs directly: exporters know ``Conv`` but not complex tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from .colgrad import conv2d_column_grad, prefers_columns

CONV_IMPLS = ("auto", "direct", "fft")
# auto's rule on CPU, from benchmarks/profile_insvp.py's convolution table (224 px, batch 4, one thread, forward and
# backward together): the FFT wins for large dense kernels over few channels (G_g of the release: 11x11 1.5x, 25x25
# 20x against conv2d) and loses to conv2d for small or dilated kernels and for many channels (every G_s layer, the
# paper's dilated 5x5 G_g), where conv2d on channels-last tensors is as fast as NCHW or up to twice as fast (the
# backward of the paper's G_g conv2). Channels-last is never used for the large kernels (a 25x25 ran 8x slower).
# On CUDA auto runs conv2d as given: cuDNN's choice is left alone until measured there (benchmarks/gpu.sh).
CPU_FFT_MIN_KERNEL = 11  # taps a side
CPU_FFT_MAX_CHANNEL_PAIRS = 32  # input x output channels


def prefers_fft(conv: nn.Conv2d, device: torch.device) -> bool:
    """``auto``'s rule: an FFT on CPU for a large kernel over few channels (see :data:`CPU_FFT_MIN_KERNEL`)."""
    return (device.type == "cpu" and min(conv.kernel_size) >= CPU_FFT_MIN_KERNEL
            and conv.in_channels * conv.out_channels <= CPU_FFT_MAX_CHANNEL_PAIRS)


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()


def fft_size(n: int) -> int:
    """The smallest size ``>= n`` whose FFT is fast: ``2^a``, ``3 * 2^a``, ``5 * 2^a`` or ``15 * 2^a``.

    pocketfft (CPU) and cuFFT are fastest on powers of two and nearly so with one factor 3 or 5; a size with a large
    prime factor is slower (the release's 25x25 convolution at 224 px, batch 4, one CPU thread: its padded 248 = 8 * 31
    took 1.6x the time of 256, forward and backward)."""
    best = 1 << max(n - 1, 0).bit_length()
    for odd in (3, 5, 15):
        size = odd
        while size < n:
            size *= 2
        best = min(best, size)
    return best


def fft_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int],
               dilation: tuple[int, int]) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding, dilation=dilation)`` (stride 1, zero padding) through the FFT.

    Computed in float32 (as cuFFT and pocketfft need; under autocast too) and returned in ``x``'s dtype.

    Args:
        x: ``(B, C_in, H, W)``.
        weight: ``(C_out, C_in, k_h, k_w)``.
        bias: ``(C_out,)`` or ``None``.
        padding: zeros added on each side, ``(p_h, p_w)``.
        dilation: ``(d_h, d_w)``.
    """
    with torch.autocast(x.device.type, enabled=False):
        dtype = x.dtype
        x, weight = x.float(), weight.float()
        out_ch, in_ch, kh, kw = weight.shape
        (dh, dw), (ph, pw) = dilation, padding
        if dh > 1 or dw > 1:  # the dilated kernel: taps spread out with zeros between them
            dilated = weight.new_zeros(out_ch, in_ch, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
            dilated[..., ::dh, ::dw] = weight
            weight = dilated
        (h, w), (kh, kw) = x.shape[-2:], weight.shape[-2:]
        out_h, out_w = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        # a circular correlation of the unpadded input with the kernel's taps at offsets -p .. k - 1 - p: output i
        # sums inputs i - p .. i - p + k - 1, where those below 0 wrap around to the zeros past the input. So a
        # size of H + p (at least k and H_out) never wraps data into a kept output, where padding the input on both
        # sides needs H + 2 p; the next size whose FFT is fast (at 224 px the release's 25x25 236 -> 240, not 256)
        size = (fft_size(max(h + ph, kh, out_h)), fft_size(max(w + pw, kw, out_w)))
        xf = torch.fft.rfft2(x, s=size)  # (B, C_in, H', W' // 2 + 1)
        # the kernel's spectrum: each axis's taps placed circularly (tap j at j - p), its k_h rows transformed before
        # the rows of zeros are added (those cost nothing: 2-3x faster, forward and backward, for the release's
        # 11x11 and 25x25)
        wf = torch.fft.rfft(_circular(weight, size[1], pw, dim=-1), dim=-1)
        wf = torch.fft.fft(_circular(wf, size[0], ph, dim=-2), dim=-2).conj()
        spectrum = _ChannelSum.apply(xf, wf)  # (B, C_out, H', W' // 2 + 1)
        out = torch.fft.irfft2(spectrum, s=size)[..., :out_h, :out_w]  # (B, C_out, H_out, W_out)
        if bias is not None:
            out = out + bias.float().view(1, -1, 1, 1)
        return out.to(dtype)


def _channel_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``out[p, q] = sum_k a[p, k] * b[q, k]`` over the spectra's frequencies: ``(P, K, ...)``, ``(Q, K, ...)`` ->
    ``(P, Q, ...)``, one ``k`` at a time into one buffer, where one broadcast product would hold ``(P, Q, K, ...)``."""
    out = a[:, 0, None] * b[None, :, 0]
    for k in range(1, a.shape[1]):
        out.addcmul_(a[:, k, None], b[None, :, k])
    return out


class _ChannelSum(torch.autograd.Function):
    """``(B, C_in, ...)`` input spectra times ``(C_out, C_in, ...)`` kernel spectra, summed over ``C_in``.

    Its backward is two more channel sums (PyTorch's convention for complex gradients: ``y = a b`` gives ``a`` the
    gradient ``g conj(b)``); autograd through the loop of products would scatter every input channel's gradient
    into a zeroed tensor of all of them, which took three times as long for the release's 25x25 convolution."""

    @staticmethod
    def forward(ctx, xf, wf):
        ctx.save_for_backward(xf, wf)
        return _channel_sum(xf, wf)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        xf, wf = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        dx = _channel_sum(grad, wf.conj().transpose(0, 1)) if need_x else None  # sum over C_out
        dw = _channel_sum(grad.transpose(0, 1), xf.conj().transpose(0, 1)) if need_w else None  # sum over B
        return dx, dw


def _circular(taps: torch.Tensor, size: int, shift: int, dim: int) -> torch.Tensor:
    """``taps`` along ``dim`` zero-padded to ``size`` and rolled by ``-shift``: tap ``j`` at ``(j - shift) % size``."""
    pad = [0, 0] * (taps.dim() - 1 - dim % taps.dim()) + [0, size - taps.shape[dim]]
    return torch.roll(F.pad(taps, pad), -shift, dims=dim)


class PromptConv2d(nn.Conv2d):
    """``nn.Conv2d`` with stride 1 and zero padding that runs as ``impl`` says.

    ``direct``: ``conv2d`` as ``nn.Conv2d`` runs it. ``fft``: :func:`fft_conv2d`. ``auto``: per call, by kernel,
    channels, device and whether the input needs a gradient (:meth:`choice`): the FFT where :func:`prefers_fft`,
    else on CPU ``conv2d`` on channels-last tensors (oneDNN's backward for few-channel 224 px maps runs up to twice
    as fast in that layout: ``benchmarks/profile_insvp.py``), with the gradient to an image input computed by kernel
    columns where :func:`~insvp_cli.methods.insvp.colgrad.prefers_columns`, else (CUDA) ``conv2d`` as given.

    Args:
        *args, **kwargs: those of ``nn.Conv2d`` (stride, groups and padding modes other than zeros are refused).
        impl: ``auto``, ``direct`` or ``fft``.
    """

    def __init__(self, *args, impl: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        if impl not in CONV_IMPLS:
            raise ValueError(f"impl {impl!r}; valid: {', '.join(CONV_IMPLS)}")
        if self.stride != (1, 1) or self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            raise ValueError("PromptConv2d takes stride 1, one group and numeric zero padding")
        self.impl = impl

    def choice(self, device: torch.device, input_grad: bool = False) -> str:
        """What a forward on ``device`` runs now: ``fft``, ``channels-last``, ``columns`` (channels-last, the input's
        gradient by kernel columns; only when the input needs one) or ``direct`` (always ``direct`` while
        exporting)."""
        if self.impl == "direct" or _exporting():
            return "direct"
        if self.impl == "fft" or prefers_fft(self, device):
            return "fft"
        if device.type != "cpu":
            return "direct"
        if input_grad and prefers_columns(self.in_channels, self.out_channels, device):
            return "columns"
        return "channels-last"

    def direct(self, x: torch.Tensor, padding: tuple[int, int] | None = None) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, 1, self.padding if padding is None else padding, self.dilation)

    def channels_last(self, x: torch.Tensor, padding: tuple[int, int] | None = None) -> torch.Tensor:
        return self.direct(x.contiguous(memory_format=torch.channels_last), padding)

    def columns(self, x: torch.Tensor, padding: tuple[int, int] | None = None) -> torch.Tensor:
        return conv2d_column_grad(x.contiguous(memory_format=torch.channels_last), self.weight, self.bias,
                                  self.padding if padding is None else padding, self.dilation)

    def fft(self, x: torch.Tensor, padding: tuple[int, int] | None = None) -> torch.Tensor:
        return fft_conv2d(x, self.weight, self.bias, self.padding if padding is None else padding, self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, self.padding)

    def cropped(self, x: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
        """``self(x)[..., c_h:-c_h, c_w:-c_w]`` for ``crop = (c_h, c_w)``, computing only the outputs kept: the
        padding loses what the crop removes, and where the crop is wider than the padding, the input loses the
        rows and columns only the removed outputs see."""
        (ph, pw), (ch, cw) = self.padding, crop
        sh, sw = max(ch - ph, 0), max(cw - pw, 0)  # input rows and columns no kept output sees
        if sh or sw:
            x = x[..., sh : x.shape[-2] - sh, sw : x.shape[-1] - sw]
        return self._run(x, (max(ph - ch, 0), max(pw - cw, 0)))

    def _run(self, x: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
        impl = self.choice(x.device, x.requires_grad and torch.is_grad_enabled())
        run = {"fft": self.fft, "channels-last": self.channels_last, "columns": self.columns, "direct": self.direct}
        return run[impl](x, padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}"
