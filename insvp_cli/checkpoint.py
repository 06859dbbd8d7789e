"""Self-describing checkpoints: trainable weights + resolved config + backbone identity + metrics.

Every file is written atomically (:mod:`insvp_cli.io`), so a run killed at any moment leaves either the previous
or the new file, never a torn one. Every file loads with ``torch.load(..., weights_only=True)``: plain containers
and tensors only, no pickled code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backbone import first_sentence
from .config import Config
from .errors import UsageError
from .resolve import resolve_config

FORMAT_VERSION = 1
# what make_checkpoint writes and restore_model / the commands read
CHECKPOINT_KEYS = ("format_version", "config", "method", "backbone", "classes", "epoch", "metrics", "state_dict")


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
                    epoch: int) -> dict[str, Any]:
    """The contents of ``best.pt`` / ``last.pt``."""
    return {
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "method": cfg.method.name,
        "backbone": {"name": cfg.backbone.name, "weights": cfg.backbone.weights,
                     "fingerprint": backbone_fingerprint(model)},
        "classes": list(classes),
        "epoch": epoch,
        "metrics": dict(metrics),
        "state_dict": {k: v.detach().cpu() for k, v in model.trainable_state_dict().items()},
    }


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely and check its format; errors name the file and what is wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist (a run folder holds best.pt and last.pt)")
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
    ckpt["path"] = str(path)
    return ckpt


def checkpoint_config(ckpt: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    return resolve_config(ckpt["config"], overrides)
