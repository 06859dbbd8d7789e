"""The method registry: every method's name, its config class and its model class, imported on demand.

A method is one package ``insvp_cli/methods/<name>/``: ``config.py`` (its config dataclass, a
:class:`~insvp_cli.config.schema.MethodConfig`; no torch), ``model.py`` (its :class:`~insvp_cli.methods.base.Method`
subclass) and a package docstring naming its paper. It is registered by ONE line below. The registry
imports neither torch nor a method's model until that model is built, so resolving a config (and every
``--help``) stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from ..common.registry import Registry

if TYPE_CHECKING:
    from ..config.schema import MethodConfig
    from .base import Method


@dataclass(frozen=True)
class MethodSpec:
    """Where a registered method lives: ``insvp_cli.methods.<name>.config.<config>`` and ``.model.<model>``."""

    name: str
    config: str
    model: str

    def _load(self, module: str, attr: str) -> type:
        return getattr(importlib.import_module(f"{__name__}.{self.name}.{module}"), attr)

    @cached_property
    def config_cls(self) -> type[MethodConfig]:
        cls = self._load("config", self.config)
        if cls().name != self.name:
            raise ValueError(f"{cls.__name__}.name defaults to {cls().name!r}, registered as {self.name!r}")
        return cls

    @cached_property
    def model_cls(self) -> type[Method]:
        return self._load("model", self.model)


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(name: str, config: str, model: str) -> None:
    """Register the method of package ``insvp_cli/methods/<name>/`` by the names of its two classes."""
    METHODS.register(name, MethodSpec(name, config, model))


# One line per method.
register_method("adapter", "AdapterConfig", "Adapter")
register_method("adaptformer", "AdaptFormerConfig", "AdaptFormer")
register_method("autovp", "AutoVPConfig", "AutoVP")
register_method("bias", "BiasConfig", "Bias")
register_method("damvp", "DamVPConfig", "DamVP")
register_method("e2vpt", "E2VPTConfig", "E2VPT")
register_method("full", "FullConfig", "Full")
register_method("ilmvp", "ILMVPConfig", "ILMVP")
register_method("insvp", "InsVPConfig", "InsVP")
register_method("linear", "LinearConfig", "Linear")
register_method("lion", "LIONConfig", "LION")
register_method("mlp", "MLPConfig", "MLP")
register_method("partial", "PartialConfig", "Partial")
register_method("sidetune", "SidetuneConfig", "Sidetune")
register_method("transhp", "TransHPConfig", "TransHP")
register_method("vp", "VPConfig", "VP")
register_method("vpt", "VPTConfig", "VPT")
register_method("yoo", "YooConfig", "Yoo")

# what `insvp compare` trains when no --methods are given: the paper's method against a probe and VPT
COMPARED_BY_DEFAULT = ("linear", "vpt", "insvp")
