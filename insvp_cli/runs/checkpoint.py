"""The two file formats of a run: self-describing checkpoints (``best.pt``, ``last.pt``: trainable weights +
resolved config + backbone identity + metrics) and ``resume.pt`` (what continuing training needs). They share one
format version.

Every file is written atomically (:mod:`..common.atomic`), so a run killed at any moment leaves either the previous
or the new file, never a torn one. Every file loads with ``torch.load(..., weights_only=True)``: plain containers
and tensors only, no pickled code.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..common.errors import UsageError, first_sentence
from ..config.schema import Config
from ..resolve.layers import resolve_config
from .folder import checkpoint_file

# of checkpoints and resume.pt alike. 1: checkpoints without classes_named; 2: resume.pt, and checkpoints with it
FORMAT_VERSION = 2
# what make_checkpoint writes and restore_model / the commands read
CHECKPOINT_KEYS = ("format_version", "config", "method", "backbone", "classes", "epoch", "metrics", "state_dict")
# keys a checkpoint may lack (those of format 1), with the value they have there. classes_named: False when
# ``classes`` are placeholders (a converted release checkpoint), so only their count is checked against the data
CHECKPOINT_DEFAULTS: dict[str, Any] = {"classes_named": True}
# what make_resume writes and read_resume checks
RESUME_KEYS = ("format_version", "epoch", "model", "optimizer", "scheduler", "scaler", "best", "rows", "rng")


def backbone_fingerprint(model: nn.Module) -> str | None:
    """A short hash of the first and last *frozen* backbone tensors: detects a checkpoint used on another
    backbone. ``None`` when every backbone tensor trains (the checkpoint then holds the whole backbone)."""
    frozen = [(k, v) for k, v in model.backbone.state_dict().items() if not model.is_trainable_name(f"backbone.{k}")]
    if not frozen:
        return None
    h = hashlib.sha256()
    for name, tensor in (frozen[0], frozen[-1]):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def make_checkpoint(model: nn.Module, cfg: Config, classes: list[str], metrics: dict[str, Any],
                    epoch: int, *, classes_named: bool = True) -> dict[str, Any]:
    """The contents of ``best.pt`` / ``last.pt``."""
    return {
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "method": cfg.method.name,
        "backbone": {"name": cfg.backbone.name, "weights": cfg.backbone.weights,
                     "fingerprint": backbone_fingerprint(model)},
        "classes": list(classes),
        "classes_named": classes_named,
        "epoch": epoch,
        "metrics": dict(metrics),
        "state_dict": {k: v.detach().cpu() for k, v in model.trainable_state_dict().items()},
    }


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely and check its format; errors name the file and what is wrong."""
    path = checkpoint_file(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated files, pickled code and non-torch files fail in many ways
        raise UsageError(f"checkpoint {path} is not a readable insvp checkpoint ({first_sentence(exc)})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt or "state_dict" not in ckpt:
        raise UsageError(f"checkpoint {path} is not an insvp checkpoint (no format_version/state_dict)")
    missing = [key for key in CHECKPOINT_KEYS if key not in ckpt]
    if missing:
        raise UsageError(f"checkpoint {path} lacks {', '.join(missing)}; an insvp checkpoint has "
                         f"{', '.join(CHECKPOINT_KEYS)}")
    if not isinstance(ckpt["format_version"], int) or ckpt["format_version"] > FORMAT_VERSION:
        raise UsageError(f"checkpoint {path} has format {ckpt['format_version']}; this insvp reads <= {FORMAT_VERSION}")
    for key, value in CHECKPOINT_DEFAULTS.items():
        ckpt.setdefault(key, value)
    ckpt["path"] = str(path)
    return ckpt


def make_resume(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, scaler, best: dict[str, Any],
                rows: list[dict[str, Any]], epoch: int) -> dict[str, Any]:
    """The contents of ``resume.pt``: the state after ``epoch``, the metric rows so far and every RNG's state.

    Args:
        best: ``{"epoch", "val_acc", "state"}`` of the best epoch so far (``state``: its trainable weights).
    """
    return {
        "format_version": FORMAT_VERSION,
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.trainable_state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "best": best,
        "rows": json.dumps(rows),
        "rng": {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.random.get_state()[1].copy()),
                "python": list(random.getstate()[1])},
    }


def read_resume(path: Path) -> dict[str, Any]:
    """Load ``resume.pt`` safely and check its format (``rows`` may be absent: older files).

    Raises:
        ValueError: not a resume file of a format this insvp reads (the caller names the file).
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not isinstance(state.get("format_version"), int):
        raise ValueError("not an insvp resume file (no format_version)")
    if state["format_version"] > FORMAT_VERSION:
        raise ValueError(f"format {state['format_version']}; this insvp reads <= {FORMAT_VERSION}")
    missing = [key for key in RESUME_KEYS if key not in state and key not in ("rows", "rng")]
    if missing:
        raise ValueError(f"it lacks {', '.join(missing)}")
    return state


def checkpoint_config(ckpt: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    return resolve_config(ckpt["config"], overrides)
