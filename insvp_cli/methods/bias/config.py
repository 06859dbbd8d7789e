"""BiasConfig: the hyper-parameters of the ``bias`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MethodConfig


@dataclass
class BiasConfig(MethodConfig):
    """BitFit has no hyper-parameters of its own (the schedule is in ``train``)."""

    name: str = "bias"
