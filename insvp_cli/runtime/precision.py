"""Autocast precision: bf16 on CUDA by default, fp32 on the CPU, fp16 with a GradScaler; and the logits of a
batch under it, the one computation ``evaluate``, ``predict`` and the figures share.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Precision:
    """Autocast settings: bf16 on CUDA by default, fp32 on CPU; fp16 uses a GradScaler."""

    device_type: str
    dtype: torch.dtype | None

    @classmethod
    def resolve(cls, name: str, device: torch.device) -> Precision:
        if name == "auto":
            name = "bf16" if device.type == "cuda" else "fp32"
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
        return cls(device.type, dtype)

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16


def eval_logits(model: nn.Module, images: torch.Tensor, device: torch.device, precision: Precision) -> torch.Tensor:
    """The model's logits of a batch on ``device`` under ``precision``'s autocast (``evaluate`` and ``predict``)."""
    with precision.autocast():
        return model(images.to(device, non_blocking=True))
