"""The method registry. A method is one module: a config dataclass, a :class:`Method` subclass, one register call.

Importing this package imports every method module once (the lines at the bottom), so registering a
new method means adding its module and one import line here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import Config, MethodConfig
from ..registry import Registry
from .base import Method


@dataclass(frozen=True)
class MethodSpec:
    config_cls: type[MethodConfig]
    model_cls: type[Method]


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(name: str, config_cls: type[MethodConfig], model_cls: type[Method]) -> None:
    if config_cls().name != name:
        raise ValueError(f"{config_cls.__name__}.name defaults to {config_cls().name!r}, registered as {name!r}")
    METHODS.register(name, MethodSpec(config_cls, model_cls))


def build_model(cfg: Config, num_classes: int, backbone: torch.nn.Module | None = None) -> Method:
    """Create the backbone (unless given), wrap it in the configured method and set what trains.

    The method's own parameters are initialised from ``cfg.train.seed`` so that two builds agree.
    """
    from ..backbone import create_backbone

    if backbone is None:
        backbone = create_backbone(cfg.backbone)
    spec = METHODS.get(cfg.method.name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        model = spec.model_cls(backbone, num_classes, cfg.method)
    model.apply_trainable()
    model.train()
    return model


# One import line per method: the import registers it.
from . import adapter, adaptformer, bias, full, insvp, linear, mlp, partial, vp, vpt  # noqa: E402, F401
