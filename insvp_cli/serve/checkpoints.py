"""The one place ``insvp serve`` rebuilds models from checkpoints (InsVP, ACM MM 2024, and its comparison methods).

Everything the server needs from the model-building code goes through this module: reading a checkpoint
(:func:`read`), building the frozen backbone that tasks share (:func:`shared_backbone`), asking whether a method
leaves that backbone as it is (:func:`rewrites_backbone`) and restoring a task's model on it, ready for inference
(:func:`restore`), with the same transform, autocast and softmax as ``insvp predict``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbone import data_config
from ..checkpoint import checkpoint_config, read_checkpoint
from ..config import Config
from ..distributed import resolve_device
from ..engine import Precision, eval_logits
from ..params import count_parameters
from ..restore import eval_transform, restore_model


@dataclass
class Checkpoint:
    """A checkpoint read and checked, its config resolved with the overrides; no model built yet.

    Attributes:
        path: the checkpoint file.
        cfg: its resolved config.
        contents: what the file holds (:func:`~insvp_cli.checkpoint.read_checkpoint`); its weights are dropped once
            the model is restored.
        holds_backbone_weights: whether its weights change the backbone: every backbone tensor trained (no
            fingerprint: ``full``), or some did (``backbone.*`` weights: ``partial``, ``bias``).
    """

    path: Path
    cfg: Config
    contents: dict[str, Any]
    holds_backbone_weights: bool

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.contents["classes"]]

    @property
    def identity(self) -> dict[str, Any]:
        """The backbone it was trained on, as the checkpoint records it: name, weights source, fingerprint."""
        return dict(self.contents["backbone"])


def read(path: Path, overrides: tuple[str, ...] = ()) -> Checkpoint:
    """Read and check ``path`` and resolve its config with ``overrides``.

    Raises:
        UsageError: not a readable insvp checkpoint, or a bad override.
    """
    contents = read_checkpoint(path)
    holds = contents["backbone"].get("fingerprint") is None or any(k.startswith("backbone.")
                                                                    for k in contents["state_dict"])
    return Checkpoint(Path(contents["path"]), checkpoint_config(contents, list(overrides)), contents, holds)


def torch_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a device.

    Raises:
        UsageError: not a device, or a CUDA device that is not there.
    """
    return resolve_device(name, option="--device")


def shared_backbone(checkpoint: Checkpoint, device: torch.device) -> nn.Module:
    """The frozen backbone of ``checkpoint``'s config (with the classifier its method reads, if any), on ``device``."""
    from ..methods.build import build_backbone

    return build_backbone(checkpoint.cfg).to(device)


def backbone_signature(backbone: nn.Module) -> tuple:
    """What a method could change in a backbone while wrapping it: its modules (type, an own ``forward``, hooks,
    plain attributes) and the names, shapes and dtypes of its tensors."""
    modules = tuple(
        (name, type(m), "forward" in vars(m), len(m._forward_hooks), len(m._forward_pre_hooks),
         tuple(sorted((k, repr(v)) for k, v in vars(m).items()
                      if k != "training" and isinstance(v, (bool, int, float, str, tuple, type(None))))))
        for name, m in backbone.named_modules()
    )
    tensors = tuple((name, tuple(t.shape), t.dtype) for name, t in backbone.state_dict(keep_vars=True).items())
    return modules, tensors


def rewrites_backbone(checkpoint: Checkpoint) -> bool:
    """Whether building the method changes the backbone it is given (:func:`backbone_signature`), tried on the meta
    device (no memory, no weights read). Such a method cannot share its backbone with other tasks. A trial that
    fails answers ``True``: the real build reports the error, on a backbone of its own."""
    from ..methods.build import build_backbone, build_model

    cfg = checkpoint.cfg
    cfg = dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, weights="none"))
    try:
        with torch.device("meta"):
            backbone = build_backbone(cfg)
            before = backbone_signature(backbone)
            build_model(cfg, len(checkpoint.classes), backbone=backbone)
    except Exception:
        return True
    return backbone_signature(backbone) != before


@dataclass
class ServedModel:
    """A task's model, ready for inference, with what feeds it and reads its outputs.

    Attributes:
        model: the method in eval mode on ``device``, no tensor requiring a gradient.
        transform: the evaluation transform (RGB PIL image -> normalised ``(3, H, W)``), as ``insvp predict``'s.
        precision: the checkpoint's autocast on ``device`` (bf16 on CUDA by default, fp32 on CPU).
        device: where the model is.
        mean, std: the input normalisation, to show a normalised image again.
        trainable_params: parameters that trained, head included (``summary.json``'s ``trainable_params``).
        extra_params: the same without the head (``trainable_params_without_head``).
    """

    model: nn.Module
    transform: Any
    precision: Precision
    device: torch.device
    mean: np.ndarray
    std: np.ndarray
    trainable_params: int
    extra_params: int

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(B, 3, H, W)`` -> softmax probabilities ``(B, K)`` (float32, on the CPU), computed as
        ``insvp predict`` computes them."""
        with torch.inference_mode():
            return eval_logits(self.model, images, self.device, self.precision).float().softmax(dim=1).cpu()


def restore(checkpoint: Checkpoint, device: torch.device, backbone: nn.Module | None = None) -> ServedModel:
    """Rebuild ``checkpoint``'s model on ``backbone`` (a shared one on ``device``; ``None``: a backbone of its own).

    Raises:
        UsageError: weights that do not fit the method, or a backbone other than the one it was trained on.
    """
    model = restore_model(checkpoint.contents, checkpoint.cfg, backbone=backbone)
    report = count_parameters(model, checkpoint.cfg.method.name, checkpoint.cfg.backbone.name)
    # served only: Grad-CAM needs gradients to the input, never to a weight
    model.requires_grad_(False)
    model.to(device)
    checkpoint.contents["state_dict"] = None  # copied into the model: not kept twice
    preprocessing = data_config(model.backbone)
    return ServedModel(
        model=model, transform=eval_transform(checkpoint.cfg, model.backbone),
        precision=Precision.resolve(checkpoint.cfg.train.precision, device), device=device,
        mean=np.asarray(preprocessing["mean"], dtype=np.float32), std=np.asarray(preprocessing["std"],
                                                                                  dtype=np.float32),
        trainable_params=report.trainable, extra_params=report.trainable_without_head,
    )
