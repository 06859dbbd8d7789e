"""AdapterConfig: the hyper-parameters of the ``adapter`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...config.coerce import bounded
from ...config.limits import MAX_WIDTH
from ...config.protocols import VPT_LINEAR_LRS, Protocol, vpt_protocol
from ...config.schema import MethodConfig


@dataclass
class AdapterConfig(MethodConfig):
    """Adapter hyper-parameters.

    Attributes:
        reduction: reduction factor ``r``: the bottleneck width is ``d // r`` (at least 1).
        placement: ``pfeiffer`` (after the MLP) or ``houlsby`` (after the attention and after the MLP).
        activation: the bottleneck's non-linearity, ``gelu`` or ``relu``.
        init: ``zeros`` (VPT's Adapter baseline, the numbers the recipes stand for: both projections start
            at zero, so only the up-projection's bias ever learns), ``houlsby`` (Houlsby et al.'s
            near-identity init: truncated normal, std 1e-2) or ``lora`` (down-projection Kaiming-uniform,
            up-projection zero, as AdaptFormer).
    """

    name: str = "adapter"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"Adapter": ()}
    # VPT ships no config of this transfer type: its solver with base-prompt.yaml's settings, its linear grid
    published: ClassVar[Protocol] = vpt_protocol("prompt", 128, 0.1, VPT_LINEAR_LRS)
    reduction: int = bounded(8, ge=1, le=MAX_WIDTH)
    placement: Literal["pfeiffer", "houlsby"] = "pfeiffer"
    activation: Literal["gelu", "relu"] = "gelu"
    init: Literal["zeros", "houlsby", "lora"] = "zeros"
