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

from ..common.errors import ConfigError, UsageError
from ..config.schema import Config
from ..methods.params import count_parameters
from ..resolve.stored import with_overrides
from ..runs.checkpoint import Checkpoint
from ..runs.trained import TrainedModel
from ..runtime.devices import resolve_device


@dataclass
class Opened:
    """A checkpoint read and checked, its config with the overrides; no model built yet.

    Attributes:
        checkpoint: the checkpoint (its weights are dropped once the model is restored).
        cfg: its config with the overrides.
        overrides: the ``--set`` values, applied again when the model is restored.
        holds_backbone_weights: whether its weights change the backbone: every backbone tensor trained (no
            fingerprint: ``full``), or some did (``backbone.*`` weights: ``partial``, ``bias``).
    """

    checkpoint: Checkpoint
    cfg: Config
    overrides: tuple[str, ...]
    holds_backbone_weights: bool

    @property
    def path(self) -> Path:
        return self.checkpoint.path

    @property
    def classes(self) -> list[str]:
        return self.checkpoint.classes

    @property
    def identity(self) -> dict[str, Any]:
        """The backbone it was trained on, as the checkpoint records it: name, weights source, fingerprint."""
        return dataclasses.asdict(self.checkpoint.backbone)


def read(path: Path, overrides: tuple[str, ...] = ()) -> Opened:
    """Read and check ``path`` and apply ``overrides`` to its stored config.

    Raises:
        UsageError: not a readable insvp checkpoint, or a bad override.
    """
    checkpoint = Checkpoint.read(path)
    try:
        cfg = with_overrides(checkpoint.config, overrides, f"checkpoint {checkpoint.path}")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    holds = checkpoint.backbone.fingerprint is None or any(k.startswith("backbone.") for k in checkpoint.state_dict)
    return Opened(checkpoint, cfg, tuple(overrides), holds)


def torch_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` as a device.

    Raises:
        UsageError: not a device, or a CUDA device that is not there.
    """
    return resolve_device(name, option="--device")


def shared_backbone(opened: Opened, device: torch.device) -> nn.Module:
    """The frozen backbone of the checkpoint's config (with the classifier its method reads, if any), on ``device``."""
    from ..methods.build import build_backbone

    return build_backbone(opened.cfg).to(device)


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


def rewrites_backbone(opened: Opened) -> bool:
    """Whether building the method changes the backbone it is given (:func:`backbone_signature`), tried on the meta
    device (no memory, no weights read). Such a method cannot share its backbone with other tasks. A trial that
    fails answers ``True``: the real build reports the error, on a backbone of its own."""
    from ..methods.build import build_backbone, build_model

    cfg = opened.cfg
    cfg = dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, weights="none"))
    try:
        with torch.device("meta"):
            backbone = build_backbone(cfg)
            before = backbone_signature(backbone)
            build_model(cfg, len(opened.classes), backbone=backbone)
    except Exception:
        return True
    return backbone_signature(backbone) != before


@dataclass
class ServedModel:
    """A task's model, ready for inference, with its parameter counts.

    Attributes:
        trained: the model as every reader of a checkpoint loads it (:class:`~insvp_cli.runs.trained.TrainedModel`:
            the evaluation transform, the checkpoint's autocast, the device), in eval mode, no tensor requiring a
            gradient.
        trainable_params: parameters that trained, head included (``summary.json``'s ``trainable_params``).
        extra_params: the same without the head (``trainable_params_without_head``).
    """

    trained: TrainedModel
    trainable_params: int
    extra_params: int

    @property
    def model(self) -> nn.Module:
        return self.trained.model

    @property
    def transform(self) -> Any:
        return self.trained.transform

    @property
    def device(self) -> torch.device:
        return self.trained.device

    @property
    def mean(self) -> np.ndarray:
        return self.trained.mean

    @property
    def std(self) -> np.ndarray:
        return self.trained.std

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(B, 3, H, W)`` -> softmax probabilities ``(B, K)`` (float32, on the CPU), computed as
        ``insvp predict`` computes them."""
        with torch.inference_mode():
            return self.trained.logits(images).float().softmax(dim=1).cpu()


def restore(opened: Opened, device: torch.device, backbone: nn.Module | None = None) -> ServedModel:
    """Rebuild the checkpoint's model on ``backbone`` (a shared one on ``device``; ``None``: a backbone of its own).

    Raises:
        UsageError: weights that do not fit the method, or a backbone other than the one it was trained on.
    """
    trained = TrainedModel.load(opened.checkpoint, opened.overrides, device=str(device), backbone=backbone)
    report = count_parameters(trained.model, opened.cfg.method.name, opened.cfg.backbone.name)
    # served only: Grad-CAM needs gradients to the input, never to a weight
    trained.model.requires_grad_(False)
    opened.checkpoint.state_dict = {}  # copied into the model: not kept twice
    return ServedModel(trained, report.trainable, report.trainable_without_head)
