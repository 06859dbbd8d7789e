"""The patch embedding's convolution with a cheap gradient to the image, for the methods that prompt pixels.

VP, ILM-VP, AutoVP, DAM-VP and InsVP train prompts on the image, so every training step backpropagates through
the frozen backbone down to the pixels. The last step of that backward, through the patch embedding (a
convolution whose kernel is its stride: ``16 x 16`` patches at ViT-B/16), is one matrix product per patch; oneDNN's
backward-data of that convolution took three times as long as the product on one CPU thread (ViT-S/16, 224 px,
batch 4, forward and backward: 0.032 s against 0.010 s; ``benchmarks/profile_insvp.py`` measures it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable


class _FrozenPatchEmbedding(torch.autograd.Function):
    """``conv2d`` with stride = kernel and no padding; the backward gives the input's gradient only."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.input_shape, ctx.input_dtype = x.shape, x.dtype
        return F.conv2d(x, weight, bias, stride=weight.shape[-2:])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (weight,) = ctx.saved_tensors
        b, c, h, w = ctx.input_shape
        out, _, ph, pw = weight.shape
        gh, gw = grad.shape[-2:]
        # (B, O, gh, gw) -> (B * gh * gw, O) @ (O, C * ph * pw): each patch's gradient at once
        patches = grad.permute(0, 2, 3, 1).reshape(-1, out) @ weight.reshape(out, -1).to(grad.dtype)
        # (B * gh * gw, C * ph * pw) -> (B, gh, gw, C, ph, pw) -> (B, C, gh, ph, gw, pw) -> (B, C, gh * ph, gw * pw)
        dx = patches.view(b, gh, gw, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, gh * ph, gw * pw)
        # the rows and columns that no patch covers (an input not a multiple of the patch) get no gradient
        return F.pad(dx, (0, w - gw * pw, 0, h - gh * ph)).to(ctx.input_dtype), None, None


class PatchConv2d(nn.Conv2d):
    """A patch embedding's ``nn.Conv2d`` (kernel = stride, no padding, one group) whose gradient to the input, on
    CPU while its weights are frozen, is one matrix product (:class:`_FrozenPatchEmbedding`). The forward is the
    same ``conv2d`` call; with trainable weights, on CUDA (cuDNN's backward is left alone until measured there) or
    without a gradient to the input it runs as ``nn.Conv2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad and x.device.type == "cpu" and not any(p.requires_grad for p in self.parameters()):
            return _FrozenPatchEmbedding.apply(x, self.weight, self.bias)
        return super().forward(x)


def use_patch_conv(model: nn.Module) -> None:
    """Make ``model.patch_embed.proj`` (timm's ViT and Swin patch embedding) a :class:`PatchConv2d` in place: same
    parameters, state-dict keys and forward. A model without one, or with another kind of patch embedding, is left
    as it is."""
    proj = getattr(getattr(model, "patch_embed", None), "proj", None)
    if (type(proj) is nn.Conv2d and proj.kernel_size == proj.stride and proj.padding == (0, 0)
            and proj.dilation == (1, 1) and proj.groups == 1):
        proj.__class__ = PatchConv2d
