"""E2VPTConfig: the hyper-parameters of the ``e2vpt`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MethodConfig, bounded
from ...errors import ConfigError


@dataclass
class E2VPTConfig(MethodConfig):
    """E2VPT hyper-parameters.

    Attributes:
        visual_tokens: visual prompt tokens per prompted block.
        deep: visual prompts before every block (E2VPT's default) instead of before the first only.
        dropout: dropout on the visual prompts (drawn per image).
        kv_tokens: key-value prompt vectors per head in every block's attention.
        share_kv: one tensor for the key and the value prompts (E2VPT's default), else one each.
        kv_dropout: dropout on the key-value prompts.
        prune: prune the visual prompts at ``prune_epoch``, then rewind and train again.
        prune_epoch: the 0-based epoch at which pruning and rewinding happen (must be below ``train.epochs``).
        prune_tokens: the share of visual prompt tokens masked (at least ``min_tokens`` stay).
        prune_segments: the share of the remaining tokens' segments masked (each keeps ``min_segments``).
        segments: equal pieces of a token for segment-wise pruning (must divide the token width).
        min_tokens: tokens that always stay.
        min_segments: segments that every remaining token keeps.
    """

    name: str = "e2vpt"
    visual_tokens: int = bounded(10, ge=1)
    deep: bool = True
    dropout: float = bounded(0.1, ge=0, lt=1)
    kv_tokens: int = bounded(5, ge=1)
    share_kv: bool = True
    kv_dropout: float = bounded(0.0, ge=0, lt=1)
    prune: bool = False
    prune_epoch: int = bounded(50, ge=1)
    prune_tokens: float = bounded(0.5, ge=0, lt=1)
    prune_segments: float = bounded(0.5, ge=0, lt=1)
    segments: int = bounded(16, ge=1)
    min_tokens: int = bounded(1, ge=1)
    min_segments: int = bounded(4, ge=1)

    def __post_init__(self) -> None:
        if self.min_tokens > self.visual_tokens:
            raise ConfigError(f"method.min_tokens: {self.min_tokens} is more than method.visual_tokens="
                              f"{self.visual_tokens}")
        if self.min_segments > self.segments:
            raise ConfigError(f"method.min_segments: {self.min_segments} is more than method.segments={self.segments}")
