"""Parameter accounting: per-component counts, trainable totals, the share of the backbone, and the
comparison of every registered method on one backbone (the paper's Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from ..config.schema import Config
from .base import Method
from .build import build_model


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
