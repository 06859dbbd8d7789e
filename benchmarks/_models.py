"""The models the benchmarks compare, shared by ``flops.py`` and ``throughput.py``.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). Besides the registered
methods (``linear``, ``insvp`` with its ``paper`` and ``release`` presets) the benchmarks need two
variants that only exist for comparison:

- common prompt only (VPT-deep-like): InsVP with ``G_l``, ``G_g`` and ``G_s`` switched off
  (:data:`ONLY_COMMON`), so only the ``L_p`` common tokens per block remain;
- the release as published (:class:`ReleaseAsPublished`): the ``release`` preset with ``G_s``
  recomputed in front of every block, as the authors' code does (docs/method.md §2).

Importing this module puts the checkout's root first on ``sys.path``, so the benchmarks measure this
checkout's ``insvp_cli`` rather than an installed one.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's insvp_cli, not an installed one

from insvp_cli.config.schema import Config  # noqa: E402
from insvp_cli.methods.base import Method  # noqa: E402
from insvp_cli.methods.build import build_model  # noqa: E402
from insvp_cli.methods.insvp.layers import CROP2, MID_GRID, SpecificPrompter  # noqa: E402
from insvp_cli.methods.insvp.model import InsVP  # noqa: E402
from insvp_cli.resolve.layers import resolve_config  # noqa: E402

NUM_CLASSES = 47  # DTD, as in the parameter counts of the README; the head's cost is negligible either way
ONLY_COMMON = ("method.patch_prompter=false", "method.global_prompter=false", "method.specific_prompter=false")


class ReleaseAsPublished(InsVP):
    """The release's forward: ``G_s`` recomputed in front of every prompted block (docs/method.md §2).

    Same parameters and arithmetic as :class:`InsVP` (``p_F_j = w_c p_c_j + w_s p_s``), so in eval mode
    its logits equal ours to float rounding; only the work differs. Its ``G_s`` also computes as the authors' does
    (:func:`_specific_as_published`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.insvp.specific_prompter is not None:
            self.insvp.specific_prompter.forward = partial(_specific_as_published, self.insvp.specific_prompter)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        image = self.image_prompts(x)
        # the wasted work: G_s once per prompted block instead of once per forward, also in eval
        p_s = [self.specific_prompt(image) for _ in range(self.insvp.num_blocks)]
        return self.features.forward_features(self.backbone, image.prompted, self.feature_prompts(p_s, x.shape[0]))


def _specific_as_published(g_s: SpecificPrompter, x: torch.Tensor) -> torch.Tensor:
    """``G_s`` in the release's order (docs/method.md §2): each convolution over its whole input, LeakyReLU, then
    the crop. Ours computes only the outputs the crops keep (``PromptConv2d.cropped``); the results are equal."""
    def crop(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return t[..., h : t.shape[-2] - h, w : t.shape[-1] - w]

    b = x.shape[0]
    x = g_s.drop(F.adaptive_max_pool2d(crop(F.leaky_relu(g_s.conv1(x)), *g_s.crop), MID_GRID))
    x = g_s.drop(F.adaptive_max_pool2d(crop(F.leaky_relu(g_s.conv2(x)), CROP2, CROP2), g_s.grid))
    return g_s.proj(g_s.conv3(x).reshape(b, g_s.prompt_len, -1))


def method_config(backbone_name: str, *overrides: str) -> Config:
    """The resolved config for ``backbone_name`` with random weights (cost does not depend on them)."""
    return resolve_config(None, [f"backbone.name={backbone_name}", "backbone.weights=none", *overrides])


def build_method(cfg: Config, backbone: nn.Module | None = None, num_classes: int = NUM_CLASSES) -> Method:
    """The method of ``cfg``, built as the CLI builds it: frozen backbone, only the method's parameters require grad.

    Pass ``backbone`` to share one backbone (and its weights) between several methods.
    """
    return build_model(cfg, num_classes, backbone=backbone)


def published_from(ours: InsVP) -> ReleaseAsPublished:
    """The release-as-published forward around the very same backbone and prompter weights as ``ours``.

    ``requires_grad`` and train/eval mode follow ``ours``; callers change them as their measurement needs.
    """
    published = ReleaseAsPublished(ours.backbone, ours.num_classes, ours.cfg)
    published.load_state_dict(ours.state_dict())
    published.apply_trainable()
    return published.train(ours.training)
