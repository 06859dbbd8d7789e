"""The ``partial`` method's model (see the package docstring)."""

from __future__ import annotations

from torch import nn

from ...common.errors import ConfigError
from ..base import Method
from .config import PartialConfig


class Partial(Method):
    """The last ``k`` blocks plus the final norm (``norm``, or ``fc_norm`` for average-pooled models) train.

    The frozen earlier blocks run in the same train/eval mode as the trained ones; timm's ViTs have no
    dropout or drop-path by default, so their outputs stay those of the pretrained model.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: PartialConfig):
        super().__init__(backbone, num_classes, cfg)
        depth = len(getattr(backbone, "blocks", ()))
        if cfg.blocks > depth:
            raise ConfigError(f"method.blocks: {cfg.blocks} is more than the {depth} blocks of the backbone")
        self.first_trained = depth - cfg.blocks

    def trainable_patterns(self) -> tuple[str, ...]:
        depth = len(self.backbone.blocks)
        blocks = tuple(f"backbone.blocks.{j}.*" for j in range(self.first_trained, depth))
        return (*blocks, "backbone.norm.*", "backbone.fc_norm.*", "head.*")
