"""FullConfig: the hyper-parameters of the ``full`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MethodConfig


@dataclass
class FullConfig(MethodConfig):
    """Full fine-tuning has no hyper-parameters of its own (the schedule is in ``train``)."""

    name: str = "full"
