"""The ``mlp`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
from torch import nn

from ..base import Method, make_head
from .config import MLPConfig


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
        self.head = make_head(self.mlp.out_features, num_classes, cfg)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.mlp(features))
