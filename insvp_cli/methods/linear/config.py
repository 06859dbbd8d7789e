"""LinearConfig: the hyper-parameters of the ``linear`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ...config.protocols import VPT_LINEAR_LRS, Protocol, vpt_protocol
from ...config.schema import MethodConfig


@dataclass
class LinearConfig(MethodConfig):
    name: str = "linear"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"Linear": ()}
    published: ClassVar[Protocol] = vpt_protocol("linear", 1024, 0.1, VPT_LINEAR_LRS)
