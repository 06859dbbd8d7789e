"""TransHPConfig: the hyper-parameters of the ``transhp`` method (see the package docstring)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ...common.errors import ConfigError
from ...config.coerce import bounded
from ...config.limits import MAX_BLOCKS, MAX_CLASSES, MAX_FACTOR
from ...config.protocols import Protocol
from ...config.schema import MethodConfig


@dataclass
class TransHPConfig(MethodConfig):
    """TransHP hyper-parameters.

    Attributes:
        coarse_classes: coarse classes of the hierarchy (one prompt each); ``None``: filled in from the data's
            hierarchy when a run starts.
        revision: which revision of the authors' code the prompting follows: ``first`` (default; its first upload,
            the revision our forward pass was checked against: prompts enter one block, ``block``) or ``current``
            (its repository now: a set of prompts and vectors in every block but the last, each giving coarse
            logits; the coarse loss is their mean).
        block: index of the block the prompts enter (revision ``first``); ``None``: the second-to-last block.
        coarse_weight: weight of the coarse cross-entropy in the loss.
    """

    name: str = "transhp"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"TransHP": ()}
    # label smoothing on every level and timm's weight-decay rule (prototypes decay) are the method's own, under both
    # protocols; its ImageNet schedule (DeiT's) is not a transfer protocol, so the shared one stays
    published: ClassVar[Protocol] = Protocol(source="WangWenhao0716/TransHP (DeiT's timm training script)")
    coarse_classes: int | None = bounded(None, ge=1, le=MAX_CLASSES)
    revision: Literal["first", "current"] = "first"
    block: int | None = bounded(None, ge=0, lt=MAX_BLOCKS)
    coarse_weight: float = bounded(1.0, ge=0, le=MAX_FACTOR)

    def __post_init__(self) -> None:
        if self.revision == "current" and self.block is not None:
            raise ConfigError(f"method.block: {self.block} applies to method.revision=first only; revision current "
                              f"prompts every block but the last")

    def requires(self) -> tuple[str, ...]:
        return ("hierarchy",)

    def with_data(self, provided: Mapping[str, Any]) -> TransHPConfig:
        hierarchy = provided["hierarchy"]
        count = len(hierarchy.coarse)
        if self.coarse_classes is not None and self.coarse_classes != count:
            raise ConfigError(f"method.coarse_classes: {self.coarse_classes}, but the hierarchy {hierarchy.path} has "
                              f"{count} coarse classes; leave it out to take the hierarchy's")
        return dataclasses.replace(self, coarse_classes=count)
