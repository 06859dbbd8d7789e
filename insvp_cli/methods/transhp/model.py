"""The ``transhp`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...backbone.vit import embed_tokens, pool
from ...errors import ConfigError, UsageError
from ..base import Method, TrainingData
from .config import TransHPConfig


class CoarsePrompts(nn.Module):
    """``prototypes`` and ``vectors`` ``(K_c, D)``; the buffer ``coarse_of`` ``(K,)``: each class's coarse class."""

    def __init__(self, coarse_classes: int, dim: int, num_classes: int):
        super().__init__()
        self.prototypes = nn.Parameter(torch.empty(coarse_classes, dim))
        self.vectors = nn.Parameter(torch.empty(coarse_classes, dim))
        nn.init.trunc_normal_(self.prototypes, std=0.02)
        nn.init.trunc_normal_(self.vectors, std=0.02)
        self.register_buffer("coarse_of", torch.zeros(num_classes, dtype=torch.int64))


class TransHP(Method):
    """Coarse-class prompts in one block of the frozen ViT, and a coarse loss on their outputs."""

    prefix = "transhp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: TransHPConfig):
        super().__init__(backbone, num_classes, cfg)
        if cfg.coarse_classes is None:
            raise UsageError("method transhp needs method.coarse_classes, which a run takes from the data's "
                             "coarse-label hierarchy (data.hierarchy; cifar100 has one built in)")
        blocks = getattr(backbone, "blocks", None)
        if blocks is None:
            raise UsageError(f"method transhp needs a ViT with `blocks`; {type(backbone).__name__} has none")
        self.prompt_block = max(0, len(blocks) - 2) if cfg.block is None else cfg.block
        if self.prompt_block >= len(blocks):
            raise ConfigError(f"method.block: {self.prompt_block} is not a block of this backbone "
                              f"(0..{len(blocks) - 1})")
        self.transhp = CoarsePrompts(cfg.coarse_classes, backbone.embed_dim, num_classes)
        self._coarse_logits: torch.Tensor | None = None

    def no_weight_decay(self) -> set[str]:
        return {"transhp.prototypes"}

    def prepare(self, data: TrainingData) -> None:
        if data.coarse_labels is None:
            raise UsageError("method transhp needs the coarse label of every class (a hierarchy); none was given")
        self.transhp.coarse_of.copy_(torch.tensor(data.coarse_labels, dtype=torch.int64))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, D)``; the coarse logits ``(B, K_c)`` of the same forward are kept for :meth:`loss`."""
        tokens = embed_tokens(self.backbone, x)
        for j, block in enumerate(self.backbone.blocks):
            if j != self.prompt_block:
                tokens = block(tokens)
                continue
            count = tokens.shape[1]
            prototypes = self.transhp.prototypes.expand(x.shape[0], -1, -1).to(tokens.dtype)
            # (B, T, D) + (B, K_c, D) -> (B, T + K_c, D), through the block, and back to (B, T, D)
            out = block(torch.cat([tokens, prototypes], dim=1))
            tokens = out[:, :count]
            # each prompt's output dotted with its own vector: (B, K_c, D) -> (B, K_c)
            self._coarse_logits = (out[:, count:] * self.transhp.vectors.to(out.dtype)).sum(dim=-1)
        return pool(self.backbone, self.backbone.norm(tokens))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
        """The fine loss plus ``coarse_weight`` times the cross-entropy of the coarse logits of the same forward.

        Hard targets ``(B,)`` and soft ones ``(B, K)`` (Mixup) alike become coarse soft targets ``(B, K_c)``
        through the class -> coarse matrix.
        """
        coarse_logits, self._coarse_logits = self._coarse_logits, None
        parents = F.one_hot(self.transhp.coarse_of, self.cfg.coarse_classes).float()  # (K, K_c)
        # hard: each target's row; soft: (B, K) @ (K, K_c) -> (B, K_c)
        coarse_targets = parents[targets] if targets.ndim == 1 else targets.float() @ parents
        coarse = -(coarse_targets * F.log_softmax(coarse_logits.float(), dim=-1)).sum(dim=-1).mean()
        return criterion(logits, targets) + self.cfg.coarse_weight * coarse
