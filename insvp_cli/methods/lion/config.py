"""LIONConfig: the hyper-parameters of the ``lion`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ...config.coerce import bounded
from ...config.limits import MAX_EPOCHS, MAX_FACTOR, MAX_WIDTH
from ...config.schema import MethodConfig


@dataclass
class LIONConfig(MethodConfig):
    """LION hyper-parameters (the values are ours; see the package docstring).

    Attributes:
        image_channels: channels ``c`` of the input implicit layer's state.
        feature_width: width ``r`` of the output implicit layer's state.
        contraction: bound on the Lipschitz constant of each fixed-point step (below 1: a unique fixed point).
        max_iter: fixed-point iterations at most.
        tol: stop when ``||z_{t+1} - z_t|| <= tol ||z_{t+1}||``.
        prune_threshold: robust training: implicit-layer weights of magnitude below this are pruned ...
        prune_weight: ... by this L1 penalty on them, added to the loss (0: no pruning).
    """

    name: str = "lion"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"LION": ()}
    image_channels: int = bounded(8, ge=1, le=MAX_WIDTH)
    feature_width: int = bounded(64, ge=1, le=MAX_WIDTH)
    contraction: float = bounded(0.9, gt=0, lt=1)
    max_iter: int = bounded(30, ge=1, le=MAX_EPOCHS)
    tol: float = bounded(1e-4, gt=0, le=MAX_FACTOR)
    prune_threshold: float = bounded(0.0, ge=0, le=MAX_FACTOR)
    prune_weight: float = bounded(0.0, ge=0, le=MAX_FACTOR)
