"""FullConfig: the hyper-parameters of the ``full`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...config.protocols import VPT_FULL_LRS, VPT_SGD, Protocol, scaled_lrs, shared_grid
from ...config.schema import MethodConfig


@dataclass
class FullConfig(MethodConfig):
    """Full fine-tuning has no hyper-parameters of its own (the schedule is in ``train``)."""

    name: str = "full"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"Full": ()}
    # VPT's full fine-tuning: its AdamW (eps 1e-6) decays every tensor but biases and LayerNorms with 0.01 whatever
    # SOLVER.WEIGHT_DECAY says; warm-up 5 of 100 epochs; batch 384; CUB's learning rate from configs/finetune/cub.yaml
    published: ClassVar[Protocol] = Protocol(
        source="KMnP/vpt: configs/base-finetune.yaml, configs/finetune/cub.yaml, src/solver/optimizer.py, "
               "tune_fgvc.py",
        train={**VPT_SGD, "optimizer": "adamw", "warmup_fraction": 0.05, "lr": 0.00375, "weight_decay": 0.01},
        data={"batch_size": 384}, method={"head_init": "vpt"}, base_lrs=VPT_FULL_LRS, weight_decays=(0.01,),
    )

    def default_grid(self, batch_size: int) -> dict[str, list[Any]]:
        """Under the shared protocol too, full fine-tuning searches VPT's full fine-tuning learning rates (scaled to
        the batch as VPT scales them): the shared grid's are for a frozen backbone and too large for every weight."""
        if self.protocol == "published":
            return super().default_grid(batch_size)
        return {**shared_grid(), "train.lr": scaled_lrs(VPT_FULL_LRS, batch_size)}
