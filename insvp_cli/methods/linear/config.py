"""LinearConfig: the hyper-parameters of the ``linear`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MethodConfig


@dataclass
class LinearConfig(MethodConfig):
    name: str = "linear"
