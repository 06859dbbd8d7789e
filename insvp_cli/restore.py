"""A trained model rebuilt from its checkpoint alone (plus the backbone weights source it records).

:func:`load_checkpoint` is the one way the commands load a checkpoint (``evaluate``, ``predict``, ``export``, the
figures): read and check the file, resolve its config with any overrides, rebuild the model on a device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .backbone import data_config
from .checkpoint import backbone_fingerprint, checkpoint_config, read_checkpoint
from .config import Config
from .distributed import resolve_device
from .errors import UsageError


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


@dataclass
class LoadedCheckpoint:
    """A checkpoint read and checked, its config resolved, its model rebuilt in eval mode on ``device``.

    Attributes:
        ckpt: the checkpoint's contents (:func:`~insvp_cli.checkpoint.read_checkpoint`; ``ckpt["path"]``: the file).
        cfg: its config with the overrides.
        model: the trained model, in eval mode, on ``device``.
        device: where the model is.
    """

    ckpt: dict[str, Any]
    cfg: Config
    model: nn.Module
    device: torch.device

    @property
    def path(self) -> Path:
        return Path(self.ckpt["path"])

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.ckpt["classes"]]


def load_checkpoint(checkpoint: str | Path, overrides: list[str] | tuple[str, ...] = (), device: str | None = None,
                    option: str = "--device") -> LoadedCheckpoint:
    """Read ``checkpoint`` (a file, or a run folder: its ``best.pt``) and rebuild its model on a device.

    Args:
        checkpoint: the checkpoint file or run folder.
        overrides: ``--set`` values applied to its config (data location, batch size, ...).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ``None``: the config's ``train.device``.
        option: the option that gave ``device``, named by its errors.

    Raises:
        UsageError: a missing or bad checkpoint, a bad override or device, a backbone it was not trained on.
    """
    ckpt = read_checkpoint(checkpoint)
    cfg = checkpoint_config(ckpt, list(overrides))
    dev = resolve_device(cfg.train.device, option="train.device") if device is None else resolve_device(
        device, option=option)
    return LoadedCheckpoint(ckpt, cfg, restore_model(ckpt, cfg).to(dev), dev)


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
