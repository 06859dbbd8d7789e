"""MLP-k head: a ``k``-layer perceptron replaces the linear head on the frozen backbone's features.

The "Mlp-k" baseline of Jia et al., "Visual Prompt Tuning" (ECCV 2022, §4.1). As in the VPT code,
each hidden layer is Linear -> ReLU -> BatchNorm1d -> Dropout with Kaiming-normal (fan-out) weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConfigError, MethodConfig
from . import register_method
from .base import Method, pool


@dataclass
class MLPConfig(MethodConfig):
    """MLP-k hyper-parameters.

    Attributes:
        layers: ``k``, the number of linear layers including the final classifier (1 = a linear probe).
        hidden: width of the hidden layers (``None``: the backbone's feature width, as in VPT).
        norm: BatchNorm1d after each hidden activation (VPT's head does).
        dropout: dropout after each hidden layer.
    """

    name: str = "mlp"
    layers: int = 3
    hidden: int | None = None
    norm: bool = True
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise ConfigError(f"method.layers: {self.layers} must be >= 1")
        if self.hidden is not None and self.hidden < 1:
            raise ConfigError(f"method.hidden: {self.hidden} must be >= 1 (or null for the feature width)")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"method.dropout: {self.dropout} is not in [0, 1)")


class HiddenLayers(nn.Module):
    """The ``k - 1`` hidden layers; the classifier itself stays the method's ``head``."""

    def __init__(self, dim: int, cfg: MLPConfig):
        super().__init__()
        width = cfg.hidden or dim
        layers: list[nn.Module] = []
        for j in range(cfg.layers - 1):
            linear = nn.Linear(dim if j == 0 else width, width)
            nn.init.kaiming_normal_(linear.weight, mode="fan_out")
            layers += [linear, nn.ReLU()]
            if cfg.norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.Dropout(cfg.dropout))
        self.hidden = nn.Sequential(*layers)
        self.out_features = width if cfg.layers > 1 else dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x)


class MLP(Method):
    """Frozen features -> hidden layers (under ``mlp.``) -> ``head`` (the last linear layer).

    Keeping the last layer as ``head`` means "without the head" counts exactly the hidden layers, the
    parameters MLP-k adds over a linear probe. :meth:`forward_features` returns the frozen backbone's
    pooled features ``(B, D)``: the hidden layers belong to the classifier.
    """

    prefix = "mlp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: MLPConfig):
        super().__init__(backbone, num_classes, cfg)
        self.mlp = HiddenLayers(backbone.num_features, cfg)
        self.head = nn.Linear(self.mlp.out_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool(self.backbone, self.backbone.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mlp(self.forward_features(x)))


register_method("mlp", MLPConfig, MLP)
