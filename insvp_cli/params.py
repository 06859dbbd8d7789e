"""Parameter accounting: per-component counts, trainable totals, the share of the backbone, and the
comparison of every registered method on one backbone (the paper's Fig. 5)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .config import Config
from .errors import ConfigError
from .methods import METHODS
from .methods.base import Method
from .methods.build import build_backbone, build_model
from .requirements import MissingNeed
from .resolve import Recipe, parse_override, resolve_config


@dataclass
class ParamReport:
    """Parameter counts of one built method.

    Attributes:
        method: method name.
        backbone: backbone name.
        num_classes: outputs of the head.
        components: parameters per component (the method's own parts, ``head``, ``backbone``).
        trainable: parameters that train, head included.
        trainable_without_head: the same without the head (the method's "extra" parameters).
        backbone_params: all parameters of the backbone.
        total: all parameters of the model.
        backbone_trainable: backbone parameters that train (``full``, ``partial``, ``bias``; else 0).
    """

    method: str
    backbone: str
    num_classes: int
    components: dict[str, int]
    trainable: int
    trainable_without_head: int
    backbone_params: int
    total: int
    backbone_trainable: int = 0

    @property
    def percent_of_backbone(self) -> float:
        return 100.0 * self.trainable / self.backbone_params

    @property
    def percent_without_head(self) -> float:
        return 100.0 * self.trainable_without_head / self.backbone_params

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "percent_of_backbone": self.percent_of_backbone,
                "percent_without_head": self.percent_without_head}

    def summary_line(self) -> str:
        """A PEFT-style one-liner."""
        return (f"trainable params: {self.trainable:,} || all params: {self.total:,} || "
                f"trainable%: {100.0 * self.trainable / self.total:.4f}")


def shape_only(cfg: Config, num_classes: int, backbone: torch.nn.Module | None = None) -> Method:
    """The configured method on the meta device: every parameter's shape, no memory and no initialisation."""
    with torch.device("meta"):
        return build_model(cfg, num_classes, backbone=backbone)


def count_parameters(model: Method, method: str, backbone: str) -> ParamReport:
    """Count ``model``'s parameters per component (prefix stripped: ``insvp.common_prompt`` -> ``common_prompt``)."""
    components: dict[str, int] = {}
    for key, count in model.component_params().items():
        label = key.split(".", 1)[1] if model.prefix and key.startswith(f"{model.prefix}.") else key
        components[label] = components.get(label, 0) + count
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head = sum(p.numel() for p in model.head.parameters() if p.requires_grad)
    return ParamReport(
        method=method,
        backbone=backbone,
        num_classes=model.num_classes,
        components=components,
        trainable=trainable,
        trainable_without_head=trainable - head,
        backbone_params=sum(p.numel() for p in model.backbone.parameters()),
        total=sum(p.numel() for p in model.parameters()),
        backbone_trainable=sum(p.numel() for p in model.backbone.parameters() if p.requires_grad),
    )


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
        return resolve_config(recipe, [*shared, f"method.name={name}", *own], bind=True)

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


# "extra" = trainable parameters without the head: what a method adds over a linear probe's head
COMPARISON_HEADERS = ("method", "extra (no head)", "with head", "% backbone (no head)", "% backbone (with head)")


def comparison_rows(reports: Sequence[ParamReport]) -> list[tuple[str, int, int, float, float]]:
    """One row per method: name, trainable without and with the head, both as % of the backbone."""
    return [(r.method, r.trainable_without_head, r.trainable, r.percent_without_head, r.percent_of_backbone)
            for r in reports]


COMPONENT_HEADERS = ("component", "parameters")


def component_rows(report: ParamReport) -> list[tuple[str, int | float]]:
    """The rows of ``insvp params`` for one method: its components, the frozen backbone, the totals."""
    rows: list[tuple[str, int | float]] = [
        (name.replace("_", " "), count) for name, count in report.components.items() if name != "backbone"
    ]
    rows += [
        (backbone_label(report), report.components.get("backbone", 0)),
        ("trainable", report.trainable),
        ("trainable without head", report.trainable_without_head),
        ("% of backbone", report.percent_of_backbone),
        ("% of backbone without head", report.percent_without_head),
    ]
    return rows


def backbone_label(report: ParamReport) -> str:
    """``frozen backbone``, or how much of it trains for methods that tune backbone weights."""
    if not report.backbone_trainable:
        return "frozen backbone"
    return f"backbone ({report.backbone_trainable:,} train)"
