"""AdaptFormerConfig: the hyper-parameters of the ``adaptformer`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import MethodConfig, bounded


@dataclass
class AdaptFormerConfig(MethodConfig):
    """AdaptFormer hyper-parameters.

    Attributes:
        bottleneck: the bottleneck width ``d^``.
        scale: the scaling factor ``s`` of the parallel branch.
        dropout: dropout on the bottleneck activations.
        adapter_input: ``residual`` (default; the authors' code: ``x'``) or ``norm`` (the paper's formula:
            ``LN(x')``).
    """

    name: str = "adaptformer"
    bottleneck: int = bounded(64, ge=1)
    scale: float = bounded(0.1, ge=0)
    dropout: float = bounded(0.1, ge=0, lt=1)
    adapter_input: Literal["norm", "residual"] = "residual"
