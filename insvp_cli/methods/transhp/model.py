"""The ``transhp`` method's model (see the package docstring)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...backbone.vit import blocks_with_prompts, embed_tokens, pool
from ...common.errors import ConfigError, UsageError
from ..base import Method, TrainingData
from .config import TransHPConfig


class CoarsePrompts(nn.Module):
    """``prototypes`` and ``vectors`` ``(K_c, D)`` (revision ``first``) or ``(n, K_c, D)``, a set per prompted block
    (``current``); the buffer ``coarse_of`` ``(K,)``: each class's coarse class."""

    def __init__(self, coarse_classes: int, dim: int, num_classes: int, blocks: int | None):
        super().__init__()
        shape = (coarse_classes, dim) if blocks is None else (blocks, coarse_classes, dim)
        self.prototypes = nn.Parameter(torch.empty(shape))
        self.vectors = nn.Parameter(torch.empty(shape))
        nn.init.trunc_normal_(self.prototypes, std=0.02)
        nn.init.trunc_normal_(self.vectors, std=0.02)
        self.register_buffer("coarse_of", torch.zeros(num_classes, dtype=torch.int64))

    def sets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The prototypes and vectors of every prompted block, ``(n, K_c, D)`` each."""
        if self.prototypes.ndim == 2:
            return self.prototypes[None], self.vectors[None]
        return self.prototypes, self.vectors


class TransHP(Method):
    """Coarse-class prompts in one block (or every block but the last) of the frozen ViT, and a coarse loss on their
    outputs."""

    prefix = "transhp"

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: TransHPConfig):
        super().__init__(backbone, num_classes, cfg)
        if cfg.coarse_classes is None:
            raise UsageError("method transhp needs method.coarse_classes, which a run takes from the data's "
                             "coarse-label hierarchy (data.hierarchy; cifar100 has one built in)")
        blocks = getattr(backbone, "blocks", None)
        if blocks is None:
            raise UsageError(f"method transhp needs a ViT with `blocks`; {type(backbone).__name__} has none")
        if cfg.revision == "current":  # every block but the last
            self.prompt_blocks = tuple(range(max(1, len(blocks) - 1)))
        else:
            block = max(0, len(blocks) - 2) if cfg.block is None else cfg.block
            if block >= len(blocks):
                raise ConfigError(f"method.block: {block} is not a block of this backbone (0..{len(blocks) - 1})")
            self.prompt_blocks = (block,)
        sets = None if cfg.revision == "first" else len(self.prompt_blocks)
        self.transhp = CoarsePrompts(cfg.coarse_classes, backbone.embed_dim, num_classes, sets)

    def prepare(self, data: TrainingData) -> None:
        if data.coarse_labels is None:
            raise UsageError("method transhp needs the coarse label of every class (a hierarchy); none was given")
        self.transhp.coarse_of.copy_(torch.tensor(data.coarse_labels, dtype=torch.int64))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_with_aux(x)[0]

    def features_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Features ``(B, D)`` and ``coarse_logits`` ``(n, B, K_c)``, those of the ``n`` prompted blocks, for
        :meth:`loss`."""
        prototypes, vectors = self.transhp.sets()
        coarse_logits = []

        def run_block(j: int, block: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
            if j not in self.prompt_blocks:
                return block(tokens)
            k = self.prompt_blocks.index(j)
            count = tokens.shape[1]
            # (B, T, D) + (B, K_c, D) -> (B, T + K_c, D), through the block, and back to (B, T, D)
            out = block(torch.cat([tokens, prototypes[k].expand(x.shape[0], -1, -1).to(tokens.dtype)], dim=1))
            # each prompt's output dotted with its own vector: (B, K_c, D) -> (B, K_c)
            coarse_logits.append((out[:, count:] * vectors[k].to(out.dtype)).sum(dim=-1))
            return out[:, :count]

        tokens = blocks_with_prompts(self.backbone, embed_tokens(self.backbone, x), run_block=run_block)
        return pool(self.backbone, tokens), {"coarse_logits": torch.stack(coarse_logits)}

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, criterion: nn.Module, **aux: torch.Tensor
             ) -> torch.Tensor:
        """The fine loss plus ``coarse_weight`` times the cross-entropy of the forward's ``coarse_logits`` (their mean
        over the prompted blocks).

        Hard targets ``(B,)`` and soft ones ``(B, K)`` (Mixup) alike become coarse targets ``(B, K_c)`` through the
        class -> coarse matrix. The coarse level gets the criterion's label smoothing as the fine level does (the
        authors' code smooths the labels of every level); Mixup's soft targets carry their smoothing already.
        """
        coarse_logits = aux["coarse_logits"]
        parents = F.one_hot(self.transhp.coarse_of, self.cfg.coarse_classes).float()  # (K, K_c)
        # hard: each target's row; soft: (B, K) @ (K, K_c) -> (B, K_c), in float32 even under autocast (a bf16
        # product would round the targets to 3 significant digits)
        with torch.autocast(device_type=targets.device.type, enabled=False):
            coarse_targets = parents[targets] if targets.ndim == 1 else targets.float() @ parents
        blocks = coarse_logits.shape[0]
        # (n, B, K_c) -> (n B, K_c): the mean over blocks and images
        coarse = F.cross_entropy(coarse_logits.float().flatten(0, 1), coarse_targets.repeat(blocks, 1),
                                 label_smoothing=getattr(criterion, "label_smoothing", 0.0))
        return criterion(logits, targets) + self.cfg.coarse_weight * coarse
