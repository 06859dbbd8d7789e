"""PartialConfig: the hyper-parameters of the ``partial`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MethodConfig, bounded


@dataclass
class PartialConfig(MethodConfig):
    """Partial-k hyper-parameters.

    Attributes:
        blocks: ``k``, how many of the last transformer blocks train (1 to the backbone's depth).
    """

    name: str = "partial"
    blocks: int = bounded(1, ge=1)
