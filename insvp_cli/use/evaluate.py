"""``insvp evaluate``: a checkpoint's model rebuilt from the checkpoint alone and evaluated on a split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common.errors import UsageError
from ..data.loaders import build_loaders, pop_bad_images
from ..data.splits import build_splits
from ..runs.trained import TrainedModel
from ..train.engine import evaluate


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Rebuild a model from a checkpoint alone and evaluate it on ``split`` (val or test).

    Raises:
        UsageError: a bad checkpoint or override, or data whose classes are not the ones the model learnt.
    """
    trained = TrainedModel.load(checkpoint, overrides)
    ckpt, cfg = trained.checkpoint, trained.config
    splits = build_splits(cfg.data, trained.transform_config)
    if len(splits.classes) != len(ckpt.classes) or (ckpt.classes_named and list(splits.classes) != ckpt.classes):
        raise UsageError(f"checkpoint {ckpt.path}: the data has other classes ({len(splits.classes)}) than it "
                         f"was trained on ({len(ckpt.classes)}); check data.name, data.root and data.classes")
    loaders = build_loaders(splits, cfg.data, distributed=False, seed=cfg.train.seed,
                            pin_memory=trained.device.type == "cuda")
    loader = getattr(loaders, split)
    result = evaluate(trained.model, loader, device=trained.device, precision=trained.precision)
    return {"checkpoint": str(ckpt.path), "split": split, "acc": result["acc"], "loss": result["loss"],
            "images": int(result["images"]), "images_per_s": result["images_per_s"],
            "skipped_bad_images": len(pop_bad_images(loader)), "logged_acc": ckpt.metrics.get(f"{split}_acc")}
