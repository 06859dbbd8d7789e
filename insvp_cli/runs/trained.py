"""A trained model loaded back from its checkpoint alone (plus the backbone weights source it records).

:meth:`TrainedModel.load` is the one way every reader of a checkpoint gets its model: ``insvp evaluate``,
``predict``, ``export``, ``gradcam``, ``tsne`` and the Python API (:func:`load_model`, :func:`load_transform`). It
reads and checks the file, applies the ``--set`` values to the stored config (nothing else: the config is the one
the model trained with), rebuilds the model on a device and gives it with its classes, evaluation transform and
autocast precision.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..backbone import data_config
from ..common.errors import ConfigError, UsageError
from ..config.schema import Config
from ..resolve.stored import with_overrides
from ..runtime.devices import resolve_device
from ..runtime.precision import Precision, eval_logits
from .checkpoint import Checkpoint, backbone_fingerprint


def build_trained_model(ckpt: Checkpoint, cfg: Config | None = None, backbone: nn.Module | None = None) -> nn.Module:
    """The checkpoint's method with its trained tensors, in eval mode, on the CPU.

    Args:
        ckpt: the checkpoint.
        cfg: its config with overrides (default: its own).
        backbone: an already built backbone to wrap (shared by several models; default: a new one).

    Raises:
        UsageError: the backbone is not the one it trained on, or the tensors do not fit the method.
    """
    from ..methods.build import build_model

    cfg = cfg or ckpt.config
    model = build_model(cfg, len(ckpt.classes), backbone=backbone)
    if ckpt.backbone.fingerprint and backbone_fingerprint(model) != ckpt.backbone.fingerprint:
        raise UsageError(f"checkpoint {ckpt.path} was trained on another backbone than {cfg.backbone.name} with "
                         f"weights {cfg.backbone.weights!r}; pass the weights it was trained with: "
                         "--set backbone.weights=PATH")
    expected, got = set(model.trainable_state_dict()), set(ckpt.state_dict)
    if expected != got:
        missing, extra = sorted(expected - got), sorted(got - expected)
        raise UsageError(f"checkpoint {ckpt.path} does not fit method {cfg.method.name}: missing {missing[:4]}, "
                         f"unexpected {extra[:4]}")
    try:
        model.load_state_dict(ckpt.state_dict, strict=False)
    except RuntimeError as exc:  # a tensor of another shape: the model was built with other sizes
        raise UsageError(f"checkpoint {ckpt.path}: {str(exc).splitlines()[-1].strip()}") from None
    return model.eval()


def eval_transform(cfg: Config, backbone: nn.Module) -> Callable[[Image.Image], torch.Tensor]:
    """The evaluation transform of ``cfg`` on ``backbone`` (whose data config decides size, mean, std)."""
    from ..data.transforms import build_transforms

    return build_transforms(cfg.data, data_config(backbone), flip=False)[1]


@dataclass
class TrainedModel:
    """A checkpoint's model in eval mode with everything needed to feed it and to read its outputs.

    Attributes:
        checkpoint: the checkpoint it was loaded from.
        config: the checkpoint's config with the overrides it was loaded with.
        model: the method, in eval mode, on ``device``.
        transform: the evaluation transform (RGB PIL image -> normalised tensor ``(3, H, W)``).
        precision: the autocast it evaluates under (bf16 on CUDA by default, fp32 on the CPU).
        device: where the model lives.
    """

    checkpoint: Checkpoint
    config: Config
    model: nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    precision: Precision
    device: torch.device

    @classmethod
    def load(cls, checkpoint: str | Path | Checkpoint, overrides: Sequence[str] = (), device: str | None = None,
             option: str = "--device", backbone: nn.Module | None = None) -> TrainedModel:
        """Read a checkpoint (a file, or a run folder: its ``best.pt``) and rebuild its model on a device.

        Args:
            checkpoint: the checkpoint file or run folder, or a checkpoint already read.
            overrides: ``--set`` values applied to its config (data location, batch size, backbone weights ...).
            device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ``None``: the config's ``train.device``.
            option: the option that gave ``device``, named by its errors.
            backbone: an already built backbone to wrap (see :func:`build_trained_model`).

        Raises:
            UsageError: a missing or bad checkpoint, a bad override or device, a backbone it was not trained on.
        """
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.read(checkpoint)
        try:
            cfg = with_overrides(ckpt.config, overrides, f"checkpoint {ckpt.path}")
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        if device is None:
            device, option = cfg.train.device, "train.device"
        dev = resolve_device(device, option=option)
        model = build_trained_model(ckpt, cfg, backbone).to(dev)
        return cls(ckpt, cfg, model, eval_transform(cfg, model.backbone), Precision.resolve(cfg.train.precision, dev),
                   dev)

    @property
    def classes(self) -> list[str]:
        return self.checkpoint.classes

    @property
    def path(self) -> Path:
        return self.checkpoint.path

    @property
    def method(self) -> str:
        return self.config.method.name

    @property
    def label(self) -> str:
        """``method (run-folder/best.pt)``: enough to tell two checkpoints apart in a figure."""
        return f"{self.method} ({self.path.parent.name}/{self.path.name})"

    @property
    def transform_config(self) -> dict:
        """The backbone's data config (input size, interpolation, mean, std) that the transforms follow."""
        return data_config(self.model.backbone)

    @property
    def mean(self) -> np.ndarray:
        """The normalisation's mean, to show normalised tensors as images again."""
        return np.asarray(self.transform_config["mean"], dtype=np.float32)

    @property
    def std(self) -> np.ndarray:
        return np.asarray(self.transform_config["std"], dtype=np.float32)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The logits of a batch of normalised images, on the model's device under its precision."""
        return eval_logits(self.model, images, self.device, self.precision)


def load_model(checkpoint: str | Path) -> nn.Module:
    """Public API: the trained model of a checkpoint, in eval mode on the CPU.

    It takes normalised images ``(B, 3, H, W)`` (see :func:`load_transform`) and returns logits.
    """
    return build_trained_model(Checkpoint.read(checkpoint))


def load_transform(checkpoint: str | Path) -> Callable[[Image.Image], torch.Tensor]:
    """Public API: the evaluation transform (PIL image -> normalised tensor) the checkpoint was evaluated with."""
    from ..backbone import create_backbone

    cfg = Checkpoint.read(checkpoint).config
    backbone_cfg = cfg.backbone
    # the transform depends on the architecture only, so random init avoids reading any weights
    model = create_backbone(type(backbone_cfg)(name=backbone_cfg.name, weights="none",
                                               img_size=backbone_cfg.img_size, kwargs=backbone_cfg.kwargs))
    return eval_transform(cfg, model)
