"""BiasConfig: the hyper-parameters of the ``bias`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ...config.protocols import VPT_LINEAR_LRS, Protocol, vpt_protocol
from ...config.schema import MethodConfig


@dataclass
class BiasConfig(MethodConfig):
    """BitFit has no hyper-parameters of its own (the schedule is in ``train``)."""

    name: str = "bias"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"Bias": ()}
    # VPT ships no config of this transfer type: its solver with base-prompt.yaml's settings, its linear grid
    published: ClassVar[Protocol] = vpt_protocol("prompt", 128, 0.1, VPT_LINEAR_LRS)
