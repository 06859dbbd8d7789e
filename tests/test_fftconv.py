"""FFT convolutions of InsVP's prompters (insvp_cli.methods.insvp.fftconv): equal to conv2d, chosen by kernel and
device, exported as direct convolutions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from insvp_cli.methods.build import build_model
from insvp_cli.methods.insvp.colgrad import conv2d_column_grad
from insvp_cli.methods.insvp.fftconv import PromptConv2d, fft_conv2d, fft_size, prefers_fft
from tests.conftest import tiny_checkpoint, tiny_config, tiny_overrides
from tests.test_export import PARAMS, _assert_exported_like_pytorch


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal to 1e-5 of the reference's largest magnitude (weight gradients sum over every output pixel)."""
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5 * max(1.0, scale))


# (in, out, kernel, dilation, height, width): the release's 11x11 and 25x25, the paper's dilated 5x5 pair, G_s's
# 7/9/3, an even kernel, odd and even sizes
CASES = [(3, 6, 11, 1, 37, 30), (6, 3, 25, 1, 40, 41), (3, 6, 5, 2, 33, 32), (6, 3, 5, 4, 32, 32),
         (3, 9, 7, 1, 30, 29), (9, 27, 9, 1, 13, 13), (27, 27, 3, 1, 8, 8), (2, 3, 4, 1, 20, 21)]


@pytest.mark.parametrize(("cin", "cout", "k", "d", "h", "w"), CASES)
def test_fft_convolution_equals_conv2d_in_outputs_and_gradients(cin, cout, k, d, h, w):
    x = torch.randn(3, cin, h, w, requires_grad=True)
    weight = torch.randn(cout, cin, k, k, requires_grad=True) / k
    bias = torch.randn(cout, requires_grad=True)
    padding, dilation = (d * (k // 2),) * 2, (d, d)
    direct = F.conv2d(x, weight, bias, padding=padding, dilation=dilation)
    fft = fft_conv2d(x, weight, bias, padding, dilation)
    assert fft.shape == direct.shape and fft.dtype == direct.dtype
    _close(fft, direct)
    grad = torch.randn_like(direct)
    for got, want in zip(torch.autograd.grad(fft, (x, weight, bias), grad),
                         torch.autograd.grad(direct, (x, weight, bias), grad), strict=True):
        _close(got, want)


@pytest.mark.parametrize("impl", ["direct", "fft", "auto"])
@pytest.mark.parametrize(("k", "d", "crop"), [(7, 1, (8, 8)), (9, 1, (2, 2)), (5, 2, (1, 6)), (3, 1, (1, 1))])
def test_a_cropped_convolution_computes_the_kept_outputs_of_the_whole_one(impl, k, d, crop):
    # G_s's 7x7 cropped by 8 (wider than its padding) and 9x9 by 2 (narrower), a dilated kernel, crop = padding;
    # 3 -> 8 channels: on CPU auto runs the input gradient by kernel columns
    conv = PromptConv2d(3, 8, k, padding=d * (k // 2), dilation=d, impl=impl)
    x = torch.randn(2, 3, 30, 27, requires_grad=True)
    (ch, cw), whole = crop, F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)
    expected = whole[..., ch : whole.shape[-2] - ch, cw : whole.shape[-1] - cw]
    cropped = conv.cropped(x, crop)
    assert cropped.shape == expected.shape
    _close(cropped, expected)
    grad = torch.randn_like(expected)
    params = (x, conv.weight, conv.bias)
    for got, want in zip(torch.autograd.grad(cropped, params, grad), torch.autograd.grad(expected, params, grad),
                         strict=True):
        _close(got, want)


def test_the_fft_size_is_the_smallest_fast_one_at_least_the_input():
    def fast(m: int) -> bool:
        while m % 2 == 0:
            m //= 2
        return m in (1, 3, 5, 15)

    for n in range(1, 600):
        size = fft_size(n)
        assert size >= n and fast(size) and not any(fast(m) for m in range(n, size)), n
    assert (fft_size(248), fft_size(234)) == (256, 240)  # the release's 25x25 and 11x11 at 224 px


# (in, out, kernel, dilation, padding, height, width): G_s's 7x7 cropped (no padding) and whole, the paper's dilated
# 5x5, a kernel wider than tall, padding wider than the kernel reaches, odd sizes
COLUMN_CASES = [(3, 16, (7, 7), (1, 1), (0, 0), 30, 29), (3, 16, (7, 7), (1, 1), (3, 3), 24, 24),
                (3, 6, (5, 5), (2, 2), (4, 4), 25, 31), (2, 8, (3, 5), (1, 2), (1, 4), 17, 20),
                (1, 4, (1, 3), (1, 1), (2, 0), 9, 10)]


@pytest.mark.parametrize(("cin", "cout", "k", "d", "p", "h", "w"), COLUMN_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_the_input_gradient_by_kernel_columns_equals_conv2d(cin, cout, k, d, p, h, w, bias):
    x = torch.randn(3, cin, h, w).contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = (torch.randn(cout, cin, *k) / k[0]).requires_grad_()
    b = torch.randn(cout, requires_grad=True) if bias else None
    direct = F.conv2d(x, weight, b, padding=p, dilation=d)
    out = conv2d_column_grad(x, weight, b, p, d)
    assert torch.equal(out, direct)  # the same forward, bit for bit
    grad = torch.randn_like(direct)
    wrt = [t for t in (x, weight, b) if t is not None]
    for got, want in zip(torch.autograd.grad(out, wrt, grad), torch.autograd.grad(direct, wrt, grad), strict=True):
        assert got.shape == want.shape
        _close(got, want)
    # only what needs a gradient gets one: the frozen weights' case, and an input that needs none
    (dx,) = torch.autograd.grad(conv2d_column_grad(x, weight.detach(), None, p, d), x, grad)
    _close(dx, torch.autograd.grad(F.conv2d(x, weight.detach(), None, padding=p, dilation=d), x, grad)[0])
    (dw,) = torch.autograd.grad(conv2d_column_grad(x.detach(), weight, None, p, d), weight, grad)
    _close(dw, torch.autograd.grad(F.conv2d(x.detach(), weight, None, padding=p, dilation=d), weight, grad)[0])


def test_auto_takes_the_input_gradient_by_columns_for_an_image_input_that_needs_one():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    g_s = PromptConv2d(3, 16, 7, padding=3)  # the release's G_s conv1
    assert g_s.choice(cpu, input_grad=True) == "columns" and g_s.choice(cpu) == "channels-last"
    assert g_s.choice(cuda, input_grad=True) == "direct"
    assert PromptConv2d(3, 16, 7, padding=3, impl="direct").choice(cpu, input_grad=True) == "direct"
    assert PromptConv2d(3, 4, 7, padding=3).choice(cpu, input_grad=True) == "channels-last"  # too few outputs
    assert PromptConv2d(16, 48, 9, padding=4).choice(cpu, input_grad=True) == "channels-last"  # too many inputs
    x = torch.randn(2, 3, 20, 20)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: conv2d as autocast runs it
        out = g_s(x.requires_grad_())
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert x.grad is not None and g_s.weight.grad is not None


def test_fft_convolution_keeps_the_input_dtype_under_autocast():
    conv = PromptConv2d(3, 6, 11, padding=5, impl="fft")
    x = torch.randn(2, 3, 24, 24)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), F.conv2d(x, conv.weight, conv.bias, padding=5), atol=0.1, rtol=0.05)


def test_auto_takes_the_fft_for_large_few_channel_kernels_on_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    large, dilated = PromptConv2d(6, 3, 25, padding=12), PromptConv2d(3, 6, 5, padding=8, dilation=4)
    assert prefers_fft(large, cpu) and not prefers_fft(large, cuda)
    assert not prefers_fft(dilated, cpu) and not prefers_fft(PromptConv2d(3, 6, 3, padding=1), cpu)
    assert prefers_fft(PromptConv2d(3, 6, 11, padding=5), cpu)
    assert not prefers_fft(PromptConv2d(16, 48, 9, padding=4), cpu)  # G_s: many channel pairs, direct is faster
    assert PromptConv2d(3, 6, 3, padding=1, impl="fft").choice(cpu) == "fft"
    assert PromptConv2d(3, 6, 25, padding=12, impl="direct").choice(cpu) == "direct"
    assert PromptConv2d(16, 48, 9, padding=4).choice(cpu) == "channels-last"
    assert PromptConv2d(16, 48, 9, padding=4).choice(cuda) == "direct"


def test_channels_last_direct_convolution_equals_conv2d():
    conv = PromptConv2d(6, 3, 5, padding=8, dilation=4)
    x = torch.randn(2, 6, 40, 36, requires_grad=True)
    _close(conv.channels_last(x), F.conv2d(x, conv.weight, conv.bias, padding=8, dilation=4))


def test_prompt_conv_refuses_what_the_fft_path_does_not_compute():
    with pytest.raises(ValueError, match="impl"):
        PromptConv2d(3, 3, 3, impl="winograd")
    with pytest.raises(ValueError, match="stride 1"):
        PromptConv2d(3, 3, 3, stride=2)


@pytest.mark.parametrize("impl", ["direct", "fft"])
def test_release_prompters_give_the_same_logits_with_either_implementation(impl):
    base = [*tiny_overrides("p8_d48_32px", "insvp"), "method.preset=release", "method.dropout=0"]
    torch.manual_seed(0)
    ours = build_model(tiny_config([*base, f"method.conv_impl={impl}"]), 5).eval()
    torch.manual_seed(0)
    reference = build_model(tiny_config([*base, "method.conv_impl=direct"]), 5).eval()
    assert ours.state_dict().keys() == reference.state_dict().keys()  # checkpoints do not change
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        _close(ours(x), reference(x))


@pytest.mark.parametrize("fmt", PARAMS)
def test_an_fft_model_exports_with_direct_convolutions(fmt, tmp_path):
    from insvp_cli.use.export import TOLERANCE, export_model

    checkpoint = tiny_checkpoint(tmp_path, [*tiny_overrides("p8_d48_32px", "insvp"), "method.preset=release",
                                            "method.conv_impl=fft"])
    result = export_model(checkpoint, fmt)
    assert result.max_diff <= TOLERANCE
    _assert_exported_like_pytorch(checkpoint, result.out, fmt)

