"""The ``lion`` method's model (see the package docstring)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..base import ImagePrompts, Method
from .config import LIONConfig

# devices whose solver stops at convergence: on the CPU the check is free and the iterations left are not; on a GPU
# the check would stall the host once per iteration (up to max_iter times a forward), where the iterations left to
# run on converged states cost little
EARLY_EXIT_DEVICES = frozenset({"cpu"})


class ImplicitLayer(nn.Module):
    """The fixed point ``z*`` of ``z = tanh(s W z + U x)``; ``W`` (``recur``) and ``U`` (``inject``) linear maps.

    Args:
        inject: ``U``, with a bias: input -> state.
        recur: ``W``, without a bias: state -> state (a ``Linear`` or a ``Conv2d``).
        cfg: contraction and solver settings.
    """

    def __init__(self, inject: nn.Module, recur: nn.Module, cfg: LIONConfig):
        super().__init__()
        self.inject, self.recur = inject, recur
        self.contraction, self.max_iter, self.tol = cfg.contraction, cfg.max_iter, cfg.tol

    def step_scale(self) -> torch.Tensor:
        """``s``: ``sqrt(k) ||W||_F`` bounds the operator norm of ``W`` (``k`` kernel taps, 1 for a linear map)."""
        weight = self.recur.weight
        taps = math.prod(weight.shape[2:])
        return self.contraction / torch.clamp(math.sqrt(taps) * weight.norm(), min=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # in float32 even under autocast: bf16 cannot resolve the solver's tolerance
        with torch.autocast(device_type=x.device.type, enabled=False):
            injected, scale = self.inject(x.float()), self.step_scale()

            def step(z: torch.Tensor) -> torch.Tensor:
                return torch.tanh(scale * self.recur(z) + injected)

            with torch.no_grad():
                z = torch.zeros_like(injected)
                done = torch.zeros((), dtype=torch.bool, device=z.device)
                # asking whether it converged makes the host wait for the device: only where that costs nothing
                stop_early = z.device.type in EARLY_EXIT_DEVICES and not torch.compiler.is_exporting()
                for _ in range(self.max_iter):
                    z_next = step(z)
                    converged = (z_next - z).norm() <= self.tol * z_next.norm()
                    # once converged, z stays: the same values as stopping there, in a graph without data-dependent
                    # control flow, so torch.export, ONNX, torch.compile and a GPU run the solver without waiting
                    z = torch.where(done, z, z_next)
                    done = done | converged
                    if stop_early and bool(done):
                        break
            return step(z)  # one step with gradients at the fixed point (Jacobian-free backpropagation)


class ImplicitPrompts(nn.Module):
    """``image``: the input implicit layer and its 1x1 read-out to RGB; ``features``: the output implicit layer
    and its read-out to ``D``. Both read-outs start at zero."""

    def __init__(self, cfg: LIONConfig, dim: int):
        super().__init__()
        c, r = cfg.image_channels, cfg.feature_width
        self.image = ImplicitLayer(nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1, bias=False), cfg)
        self.image_out = nn.Conv2d(c, 3, 1)
        self.features = ImplicitLayer(nn.Linear(dim, r), nn.Linear(r, r, bias=False), cfg)
        self.features_out = nn.Linear(r, dim)
        for layer in (self.image_out, self.features_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)


class LION(Method):
    """An image prompt from the input implicit layer, features enriched by the output implicit layer."""

    prefix = "lion"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: LIONConfig):
        super().__init__(backbone, num_classes, cfg)
        self.lion = ImplicitPrompts(cfg, backbone.num_features)

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts:
        prompt = self.lion.image_out(self.lion.image(x)).to(x.dtype)
        return ImagePrompts(image=x, prompt=prompt, prompted=x + prompt)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        features = super().forward_features(x)  # of the prompted images
        return features + self.lion.features_out(self.lion.features(features))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, criterion: nn.Module, **aux: torch.Tensor
             ) -> torch.Tensor:
        """The task loss plus the robust-training penalty: ``prune_weight`` times the L1 norm of the
        implicit-layer weights below ``prune_threshold`` in magnitude."""
        loss = criterion(logits, targets)
        if self.cfg.prune_weight <= 0 or self.cfg.prune_threshold <= 0:
            return loss
        weights = [p for name, p in self.lion.named_parameters() if name.endswith("weight")]
        small = sum((w.abs() * (w.abs() < self.cfg.prune_threshold)).sum() for w in weights)
        return loss + self.cfg.prune_weight * small
