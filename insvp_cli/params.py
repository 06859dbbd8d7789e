"""Parameter accounting: per-component counts, trainable totals and the share of the backbone."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .methods import Method


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
    """

    method: str
    backbone: str
    num_classes: int
    components: dict[str, int]
    trainable: int
    trainable_without_head: int
    backbone_params: int
    total: int

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
    )
