"""Bias tuning (BitFit): every bias term of the backbone and the head train.

Ben Zaken et al., "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked
Language-models" (ACL 2022); the "Bias" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import MethodConfig
from . import register_method
from .base import Method, pool


@dataclass
class BiasConfig(MethodConfig):
    """BitFit has no hyper-parameters of its own (the schedule is in ``train``)."""

    name: str = "bias"


class Bias(Method):
    """Every backbone parameter whose name ends in ``bias`` trains, and the head.

    That is the biases of the patch embedding, of ``qkv``/``proj`` and ``fc1``/``fc2`` in each block, and of
    every LayerNorm (BitFit tunes all bias terms, normalisation biases included); the ``q_bias``/``v_bias``
    of BEiT-style attention match too.
    """

    def trainable_patterns(self) -> tuple[str, ...]:
        return ("backbone.*bias", "head.*")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool(self.backbone, self.backbone.forward_features(x))


register_method("bias", BiasConfig, Bias)
