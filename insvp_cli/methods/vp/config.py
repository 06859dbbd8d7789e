"""VPConfig: the hyper-parameters of the ``vp`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MethodConfig, bounded


@dataclass
class VPConfig(MethodConfig):
    """Padding-prompt hyper-parameters.

    Attributes:
        pad: the frame width ``p`` in pixels; ``None``: the paper's 30 px at 224 px, scaled with the
            shorter input side (4 px at 32 px), at least 1.
    """

    name: str = "vp"
    pad: int | None = bounded(None, ge=1)
