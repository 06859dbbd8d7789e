"""A trained model rebuilt from its checkpoint alone (plus the backbone weights source it records)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .backbone import data_config
from .checkpoint import backbone_fingerprint, checkpoint_config, read_checkpoint
from .config import Config
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
