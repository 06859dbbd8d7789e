"""Large-kernel convolutions of InsVP's prompters as FFT convolutions where that is faster.

InsVP (ACM MM 2024) prompts the image with convolutions over the whole input: the release's global prompter
``G_g`` runs an 11x11 and a 25x25 convolution at 224 px, the ``paper`` preset 5x5 ones dilated to 9x9 and
17x17. A direct convolution costs ``k^2`` multiply-adds per output and channel pair, an FFT one the same for any
``k``: with ``torch.fft`` the 6 -> 3 channel 25x25 convolution at 224 px runs forward and backward more than
ten times faster on a CPU (``benchmarks/profile_insvp.py``). Both compute the same cross-correlation (what
``F.conv2d`` computes), equal to float32 rounding.

:class:`PromptConv2d` is an ``nn.Conv2d`` (same parameters, same state-dict keys, so checkpoints do not change)
whose ``impl`` chooses: ``direct`` (``F.conv2d``), ``fft`` or ``auto`` (:func:`prefers_fft`). While a model is
exported (ONNX, ``torch.export``) it always runs directly: exporters know ``Conv`` but not complex tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
        x = F.pad(x, (pw, pw, ph, ph))  # (B, C_in, H + 2 p_h, W + 2 p_w)
        out_h, out_w = x.shape[-2] - weight.shape[-2] + 1, x.shape[-1] - weight.shape[-1] + 1
        # a circular correlation at least the padded input's size: its first H_out x W_out outputs never wrap
        # around; a size whose FFT is fast (at 224 px the release's 248 -> 256 and 234 -> 240)
        size = (fft_size(x.shape[-2]), fft_size(x.shape[-1]))
        xf = torch.fft.rfft2(x, s=size)
        # the kernel's spectrum as rfft2 computes it, but transforming only its k_h rows before padding them: the
        # rows of zeros cost nothing (2-3x faster, forward and backward, for the release's 11x11 and 25x25)
        wf = torch.fft.fft(torch.fft.rfft(weight, n=size[1], dim=-1), n=size[0], dim=-2).conj()
        # the channel sum, one input channel at a time: (B, 1, H', W'') * (C_out, H', W'') summed over C_in keeps
        # (B, C_out, H', W'') in memory, where one broadcast product would hold (B, C_out, C_in, H', W'')
        spectrum = sum(xf[:, i, None] * wf[None, :, i] for i in range(in_ch))  # (B, C_out, H', W' // 2 + 1)
        out = torch.fft.irfft2(spectrum, s=size)[..., :out_h, :out_w]  # (B, C_out, H_out, W_out)
        if bias is not None:
            out = out + bias.float().view(1, -1, 1, 1)
        return out.to(dtype)


class PromptConv2d(nn.Conv2d):
    """``nn.Conv2d`` with stride 1 and zero padding that runs as ``impl`` says.

    ``direct``: ``conv2d`` as ``nn.Conv2d`` runs it. ``fft``: :func:`fft_conv2d`. ``auto``: per call, by kernel,
    channels and device (:meth:`choice`): the FFT where :func:`prefers_fft`, else on CPU ``conv2d`` on channels-last
    tensors (oneDNN's backward for few-channel 224 px maps runs up to twice as fast in that layout:
    ``benchmarks/profile_insvp.py``), else (CUDA) ``conv2d`` as given.

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

    def choice(self, device: torch.device) -> str:
        """What a forward on ``device`` runs now: ``fft``, ``channels-last`` or ``direct`` (always ``direct`` while
        exporting)."""
        if self.impl == "direct" or _exporting():
            return "direct"
        if self.impl == "fft" or prefers_fft(self, device):
            return "fft"
        return "channels-last" if device.type == "cpu" else "direct"

    def direct(self, x: torch.Tensor, padding: tuple[int, int] | None = None) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, 1, self.padding if padding is None else padding, self.dilation)

    def channels_last(self, x: torch.Tensor, padding: tuple[int, int] | None = None) -> torch.Tensor:
        return self.direct(x.contiguous(memory_format=torch.channels_last), padding)

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
        run = {"fft": self.fft, "channels-last": self.channels_last, "direct": self.direct}[self.choice(x.device)]
        return run(x, padding)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}"
