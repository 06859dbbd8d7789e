"""Self-describing checkpoints: trainable weights + resolved config + backbone identity + metrics.

Every file is written atomically (temp file in the same folder, then ``os.replace``), so a run killed
at any moment leaves either the previous or the new file, never a torn one. Every file loads with
``torch.load(..., weights_only=True)``: plain containers and tensors only, no pickled code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from .backbone import data_config, first_sentence
from .config import Config
from .errors import UsageError
from .resolve import resolve_config

FORMAT_VERSION = 1
# what make_checkpoint writes and restore_model / the commands read
CHECKPOINT_KEYS = ("format_version", "config", "method", "backbone", "classes", "epoch", "metrics", "state_dict")


def _new_file_mode() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _new_file_mode()


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path`` for writing; on a clean exit fsync it and rename it over ``path``.

    Whatever goes wrong inside the block (an error, Ctrl-C), the temp file is removed and ``path`` keeps
    its previous contents (or stays absent). ``kwargs`` go to :func:`open` (e.g. ``newline=""`` for csv).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp's file is private (0600): give it the mode a plain open() would (the file's own, or the umask's)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else _NEW_FILE_MODE)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path,
                            metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` as a ``.safetensors`` file atomically."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata)
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


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


def restore_model(ckpt: dict[str, Any], cfg: Config | None = None, backbone: nn.Module | None = None) -> nn.Module:
    """Rebuild the method from a checkpoint alone (plus the backbone weights source it records)."""
    from .methods.build import build_model

    cfg = cfg or checkpoint_config(ckpt)
    model = build_model(cfg, len(ckpt["classes"]), backbone=backbone)
    fingerprint = ckpt["backbone"].get("fingerprint")
    if fingerprint and backbone_fingerprint(model) != fingerprint:
        raise UsageError(
            f"checkpoint {ckpt['path']} was trained on another backbone than {cfg.backbone.name} with weights "
            f"{cfg.backbone.weights!r}; pass the weights it was trained with: --set backbone.weights=PATH"
        )
    expected = set(model.trainable_state_dict())
    got = set(ckpt["state_dict"])
    if expected != got:
        missing, extra = sorted(expected - got), sorted(got - expected)
        raise UsageError(f"checkpoint {ckpt['path']} does not fit method {cfg.method.name}: missing "
                         f"{missing[:4]}, unexpected {extra[:4]}")
    try:
        model.load_state_dict(ckpt["state_dict"], strict=False)
    except RuntimeError as exc:
        raise UsageError(f"checkpoint {ckpt['path']}: {str(exc).splitlines()[-1].strip()}") from None
    return model.eval()


def load_model(checkpoint: str | Path) -> nn.Module:
    """Public API: the trained model of a checkpoint, in eval mode.

    It takes normalised images ``(B, 3, H, W)`` (see :func:`load_transform`) and returns logits.
    """
    return restore_model(read_checkpoint(checkpoint))


def load_transform(checkpoint: str | Path):
    """Public API: the evaluation transform (PIL image -> normalised tensor) the checkpoint was evaluated with."""
    from .backbone import create_backbone

    cfg = checkpoint_config(read_checkpoint(checkpoint))
    backbone_cfg = cfg.backbone
    # the transform depends on the architecture only, so random init avoids reading any weights
    model = create_backbone(type(backbone_cfg)(name=backbone_cfg.name, weights="none",
                                               img_size=backbone_cfg.img_size, kwargs=backbone_cfg.kwargs))
    return eval_transform(cfg, model)


def eval_transform(cfg: Config, backbone: nn.Module):
    """The evaluation transform of ``cfg`` on ``backbone`` (whose data config decides size, mean, std)."""
    from .data import build_transforms

    return build_transforms(cfg.data, data_config(backbone), flip=False)[1]
