"""PartialConfig: the hyper-parameters of the ``partial`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ...config.coerce import bounded
from ...config.limits import MAX_BLOCKS
from ...config.protocols import VPT_LINEAR_LRS, Protocol, vpt_protocol
from ...config.schema import MethodConfig


@dataclass
class PartialConfig(MethodConfig):
    """Partial-k hyper-parameters.

    Attributes:
        blocks: ``k``, how many of the last transformer blocks train (1 to the backbone's depth).
    """

    name: str = "partial"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"Partial-1": ("method.blocks=1",)}
    # VPT ships no config of this transfer type: its solver with base-prompt.yaml's settings, its linear grid
    published: ClassVar[Protocol] = vpt_protocol("prompt", 128, 0.1, VPT_LINEAR_LRS)
    blocks: int = bounded(1, ge=1, le=MAX_BLOCKS)
