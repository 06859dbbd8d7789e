"""MLPConfig: the hyper-parameters of the ``mlp`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...config.coerce import bounded
from ...config.limits import MAX_BLOCKS, MAX_WIDTH
from ...config.protocols import VPT_LINEAR_LRS, Protocol, vpt_protocol
from ...config.schema import MethodConfig


@dataclass
class MLPConfig(MethodConfig):
    """MLP-k hyper-parameters.

    Attributes:
        layers: ``k``, the number of linear layers including the final classifier (1 = a linear probe).
        hidden: width of the hidden layers (``None``: the backbone's feature width, as in VPT).
        norm: BatchNorm1d after each hidden activation (VPT's head does).
        dropout: dropout after each hidden layer.
        head_init: the last layer's init; ``vpt`` (default): as VPT's MLP head, Kaiming-normal fan-out
            weights and bias ``-log(99)`` (see :class:`~insvp_cli.config.schema.MethodConfig`).
    """

    name: str = "mlp"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"MLP-3": ("method.layers=3",)}
    published: ClassVar[Protocol] = vpt_protocol("linear", 1024, 0.1, VPT_LINEAR_LRS)
    layers: int = bounded(3, ge=1, le=MAX_BLOCKS)
    hidden: int | None = bounded(None, ge=1, le=MAX_WIDTH)
    norm: bool = True
    dropout: float = bounded(0.1, ge=0, lt=1)
    head_init: Literal["torch", "vpt", "trunc_normal"] = "vpt"
