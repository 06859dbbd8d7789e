"""AdaptFormerConfig: the hyper-parameters of the ``adaptformer`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...config.coerce import bounded
from ...config.limits import MAX_FACTOR, MAX_WIDTH
from ...config.protocols import NO_MIXING, Protocol
from ...config.schema import MethodConfig


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
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"AdaptFormer": ()}
    # MAE's linear-probe recipe: SGD (momentum 0.9, no weight decay) at blr 0.1 x batch / 256 with batch 512, a
    # warm-up of 20 of 100 epochs, then a half-cycle cosine to 0; plain cross-entropy; BatchNorm + linear head
    published: ClassVar[Protocol] = Protocol(
        source="ShoufaChen/AdaptFormer: main_image.py (argument defaults, optimizer, head)",
        train={"optimizer": "sgd", "momentum": 0.9, "lr": 0.2, "weight_decay": 0.0, "schedule": "cosine", "min_lr": 0.0,
               "epochs": 100, "warmup_fraction": 0.2, **NO_MIXING},
        data={"batch_size": 512}, method={"head_norm": True, "head_init": "trunc_normal"}, base_lrs=(0.1,),
    )
    bottleneck: int = bounded(64, ge=1, le=MAX_WIDTH)
    scale: float = bounded(0.1, ge=0, le=MAX_FACTOR)
    dropout: float = bounded(0.1, ge=0, lt=1)
    adapter_input: Literal["norm", "residual"] = "residual"
