"""``build_model``: the configured method around its frozen backbone, with exactly its parameters trainable."""

from __future__ import annotations

import torch

from ..config.schema import Config
from . import METHODS
from .base import Method


def build_backbone(cfg: Config) -> torch.nn.Module:
    """The frozen backbone of ``cfg``, with its pretrained classifier when the method reads it (label mapping)."""
    from ..backbone import create_backbone

    return create_backbone(cfg.backbone, keep_classifier=cfg.method.keep_backbone_classifier)


def build_model(cfg: Config, num_classes: int, backbone: torch.nn.Module | None = None) -> Method:
    """Create the backbone (unless given, see :func:`build_backbone`), wrap it in the configured method and set
    what trains.

    The method's own parameters are initialised from ``cfg.train.seed`` so that two builds agree.

    Raises:
        UsageError: ``data.image_size`` that the backbone cannot take, or a method that does not fit it.
    """
    from ..backbone import check_data_size

    if backbone is None:
        backbone = build_backbone(cfg)
    check_data_size(backbone, cfg.data.image_size)
    model_cls = METHODS.get(cfg.method.name).model_cls
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = model_cls(backbone, num_classes, cfg.method)
    model.apply_trainable()
    model.train()
    return model
