"""``insvp evaluate``: a checkpoint's model rebuilt from the checkpoint alone and evaluated on a split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..backbone import data_config
from ..common.errors import UsageError
from ..data.loaders import build_loaders, pop_bad_images
from ..data.splits import build_splits
from ..runs.trained import load_checkpoint
from ..runtime.precision import Precision
from ..train.engine import (
    evaluate,
)


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", overrides: list[str] | tuple[str, ...] = (),
                        ) -> dict[str, Any]:
    """Rebuild a model from a checkpoint alone and evaluate it on ``split`` (val or test)."""
    loaded = load_checkpoint(checkpoint, overrides)
    ckpt, cfg, model, device = loaded.ckpt, loaded.cfg, loaded.model, loaded.device
    splits = build_splits(cfg.data, data_config(model.backbone))
    named = ckpt["classes_named"]
    if len(splits.classes) != len(ckpt["classes"]) or (named and list(splits.classes) != list(ckpt["classes"])):
        raise UsageError(f"checkpoint {ckpt['path']}: the data has other classes ({len(splits.classes)}) than it "
                         f"was trained on ({len(ckpt['classes'])}); check data.name, data.root and data.classes")
    loaders = build_loaders(splits, cfg.data, distributed=False, seed=cfg.train.seed, pin_memory=device.type == "cuda")
    loader = getattr(loaders, split)
    result = evaluate(model, loader, device=device, precision=Precision.resolve(cfg.train.precision, device))
    logged = ckpt["metrics"].get(f"{split}_acc")
    return {"checkpoint": ckpt["path"], "split": split, "acc": result["acc"], "loss": result["loss"],
            "images": int(result["images"]), "images_per_s": result["images_per_s"],
            "skipped_bad_images": len(pop_bad_images(loader)), "logged_acc": logged}
