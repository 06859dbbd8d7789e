"""A trained model rebuilt from its checkpoint alone (plus the backbone weights source it records).

:func:`load_checkpoint` is the one way the commands load a checkpoint (``evaluate``, ``predict``, ``export``, the
figures): read and check the file, resolve its config with any overrides, rebuild the model on a device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..backbone import data_config
from ..common.errors import UsageError
from ..config.schema import Config
from ..runtime.devices import resolve_device
from .checkpoint import backbone_fingerprint, checkpoint_config, read_checkpoint


def restore_model(ckpt: dict[str, Any], cfg: Config | None = None, backbone: nn.Module | None = None) -> nn.Module:
    """Rebuild the method from a checkpoint alone (plus the backbone weights source it records)."""
    from ..methods.build import build_model

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
        ckpt: the checkpoint's contents (:func:`.checkpoint.read_checkpoint`; ``ckpt["path"]``: the file).
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
    from ..backbone import create_backbone

    cfg = checkpoint_config(read_checkpoint(checkpoint))
    backbone_cfg = cfg.backbone
    # the transform depends on the architecture only, so random init avoids reading any weights
    model = create_backbone(type(backbone_cfg)(name=backbone_cfg.name, weights="none",
                                               img_size=backbone_cfg.img_size, kwargs=backbone_cfg.kwargs))
    return eval_transform(cfg, model)


def eval_transform(cfg: Config, backbone: nn.Module):
    """The evaluation transform of ``cfg`` on ``backbone`` (whose data config decides size, mean, std)."""
    from ..data.transforms import build_transforms

    return build_transforms(cfg.data, data_config(backbone), flip=False)[1]


@dataclass
class TrainedModel:
    """A checkpoint's model in eval mode, with what is needed to feed it and to read its outputs.

    Attributes:
        model: the method, in eval mode, on ``device``.
        cfg: the resolved config the checkpoint was trained with (plus any overrides).
        transform: the evaluation transform (RGB PIL image -> normalised tensor ``(3, H, W)``).
        mean, std: the normalisation, to show normalised tensors as images again.
        classes: ``classes[label]`` names the label.
        path: the checkpoint file.
        device: where the model lives.
    """

    model: nn.Module
    cfg: Config
    transform: Callable[[Image.Image], torch.Tensor]
    mean: np.ndarray
    std: np.ndarray
    classes: list[str]
    path: Path
    device: torch.device

    @property
    def method(self) -> str:
        return self.cfg.method.name

    @property
    def label(self) -> str:
        """``method (run-folder/best.pt)``: enough to tell two checkpoints apart in a figure."""
        return f"{self.method} ({self.path.parent.name}/{self.path.name})"


def load_trained(checkpoint: str | Path, device: str = "auto", overrides: Sequence[str] = ()) -> TrainedModel:
    """Rebuild a checkpoint's model and its evaluation transform (the same as :func:`insvp_cli.load_transform`)."""
    loaded = load_checkpoint(checkpoint, overrides, device=device, option="train.device")
    cfg, model, dev = loaded.cfg, loaded.model, loaded.device
    data_cfg = data_config(model.backbone)
    transform = eval_transform(cfg, model.backbone)
    return TrainedModel(model, cfg, transform, np.asarray(data_cfg["mean"], dtype=np.float32),
                        np.asarray(data_cfg["std"], dtype=np.float32), list(loaded.ckpt["classes"]), loaded.path,
                        dev)
