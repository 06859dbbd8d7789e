"""Every registered method built on one backbone from the recipes, its parameters counted (paper Fig. 5)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..common.errors import ConfigError
from ..config.overrides import parse_override
from ..config.schema import Config
from ..methods import METHODS
from ..methods.build import build_backbone
from ..methods.params import (
    ParamReport,
    count_parameters,
    shape_only,
)
from ..resolve.layers import resolve_config
from ..resolve.needs import MissingNeed
from ..resolve.recipes import Recipe


def compare_methods(
    backbone: str | None,
    num_classes: int,
    overrides: Sequence[str] = (),
    recipe: Recipe | Sequence[Recipe] | None = None,
    methods: Sequence[str] | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> list[ParamReport]:
    """Build every registered method (or ``methods``) on one backbone and count its parameters (paper Fig. 5).

    The backbone is created once, on the meta device (counting needs shapes, not weights; once more with its
    classifier for the label-mapping methods), and each method gets a deep copy, so a method that unfreezes
    backbone weights (``full``, ``partial``, ``bias``) cannot leak that into the next. A method that needs
    something the data config does not provide (TransHP: a hierarchy) is left out, and ``on_skip`` gets the
    one-line reason.
    Method hyper-parameters come from each method's defaults < the recipe's per-method delta
    ``methods: {M: {...}}`` < the recipe's ``method`` group when it names M < ``method.KEY=value`` overrides,
    which apply to every method whose config has ``KEY``.

    Args:
        backbone: timm model name (``None``: the recipe's or the default backbone).
        num_classes: outputs of each head.
        overrides: ``a.b=value`` strings; ``method.name`` is not allowed (every method is built).
        recipe: recipe YAMLs (later ones win) whose ``backbone`` (and method deltas) apply.
        methods: registered names to include, in this order (default: all, sorted).
        on_skip: called with the reason of each method left out.

    Raises:
        ConfigError: ``method.name`` given, or a ``method.KEY`` that no compared method has.
    """
    names = list(methods) if methods is not None else METHODS.names()
    for name in names:
        METHODS.get(name)  # unknown names fail here, listing the valid ones
    shared, method_sets = [], {}
    for text in overrides:
        keys, _ = parse_override(text)
        if keys[0] != "method":
            shared.append(text)
        elif keys[1:] == ["name"]:
            raise ConfigError("method.name: --compare builds every method; leave method.name out")
        elif len(keys) != 2:
            raise ConfigError(f"--set {text!r}: method keys have one level (method.KEY=value)")
        else:
            method_sets[keys[1]] = text
    fields = {name: {f.name for f in dataclasses.fields(METHODS.get(name).config_cls)} for name in names}
    known = set().union(*fields.values())
    unknown = sorted(set(method_sets) - known)
    if unknown:
        raise ConfigError(f"unknown key method.{unknown[0]} for the compared methods; valid keys: "
                          f"{', '.join(sorted(known - {'name'}))}")
    shared += [f"backbone.name={backbone}"] if backbone else []
    shared.append("backbone.weights=none")

    def config_for(name: str) -> Config:
        # the resolver applies the recipe's per-method deltas and drops its other method's keys
        own = [text for key, text in method_sets.items() if key in fields[name]]
        return resolve_config(recipe, [*shared, f"method.name={name}", *own])

    templates: dict[bool, nn.Module] = {}
    reports = []
    for name in names:
        try:
            cfg = config_for(name)
        except MissingNeed as exc:
            if on_skip is not None:
                on_skip(str(exc))
            continue
        keep = cfg.method.keep_backbone_classifier
        if keep not in templates:
            with torch.device("meta"):
                templates[keep] = build_backbone(cfg)
        model = shape_only(cfg, num_classes, backbone=copy.deepcopy(templates[keep]))
        reports.append(count_parameters(model, name, cfg.backbone.name))
    return reports
