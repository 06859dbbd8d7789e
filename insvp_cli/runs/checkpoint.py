"""The two file formats of a run: self-describing checkpoints (``best.pt``, ``last.pt``: trainable weights, the
run's config, backbone identity, classes and metrics) and ``resume.pt`` (what continuing training needs).

Every file is written atomically (:mod:`insvp_cli.common.atomic`), so a run killed at any moment leaves either the
previous or the new file, never a torn one. Every file loads with ``torch.load(..., weights_only=True)``: plain
containers and tensors only, no pickled code. A checkpoint's config is read back as it is stored
(:func:`~insvp_cli.resolve.stored.config_from_tree`), so a model rebuilt from it is the model that trained.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..common.atomic import atomic_save
from ..common.errors import ConfigError, UsageError, first_sentence
from ..config.schema import Config
from ..resolve.stored import config_from_tree
from .folder import checkpoint_file

# checkpoints: 1 had no classes_named; 2 has it
CHECKPOINT_FORMAT = 2
# resume.pt: 2 kept the learning-rate scheduler's state; 3 keeps the step count, from which the schedule of the
# (possibly changed) config is computed again
RESUME_FORMAT = 3
# what a checkpoint file holds
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


@dataclass(frozen=True)
class BackboneIdentity:
    """Which frozen backbone a checkpoint's weights belong to.

    Attributes:
        name: the timm model name.
        weights: where its weights came from (``timm``, ``none``, a file, ``asset:...``).
        fingerprint: :func:`backbone_fingerprint` (``None``: the checkpoint holds the whole backbone).
    """

    name: str
    weights: str
    fingerprint: str | None = None


@dataclass
class Checkpoint:
    """``best.pt`` / ``last.pt``: a trained model described well enough to rebuild it with no recipe.

    Attributes:
        config: the run's config, as stored.
        classes: class names; ``classes[label]``.
        state_dict: the trainable tensors (and buffers under the same names), on the CPU.
        backbone: the backbone the weights belong to.
        epoch: the epoch the weights are from.
        metrics: that epoch's metrics (``val_acc``, and ``test_acc`` in a finished run's ``best.pt``).
        classes_named: False when ``classes`` are placeholders (a converted release checkpoint): only their count
            is checked against the data.
        path: the file it was read from (``None`` for one made in memory).
    """

    config: Config
    classes: list[str]
    state_dict: dict[str, torch.Tensor]
    backbone: BackboneIdentity
    epoch: int
    metrics: dict[str, Any] = field(default_factory=dict)
    classes_named: bool = True
    path: Path | None = None

    @property
    def method(self) -> str:
        return self.config.method.name

    @classmethod
    def of(cls, model: nn.Module, cfg: Config, classes: list[str], metrics: dict[str, Any], epoch: int, *,
           classes_named: bool = True) -> Checkpoint:
        """The checkpoint of ``model`` (its trainable tensors) trained with ``cfg``."""
        return cls(cfg, [str(c) for c in classes],
                   {k: v.detach().cpu() for k, v in model.trainable_state_dict().items()},
                   BackboneIdentity(cfg.backbone.name, cfg.backbone.weights, backbone_fingerprint(model)), epoch,
                   dict(metrics), classes_named)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "method": self.method,
            "backbone": dataclasses.asdict(self.backbone), "classes": list(self.classes),
            "classes_named": self.classes_named, "epoch": self.epoch, "metrics": dict(self.metrics),
            "state_dict": self.state_dict,
        }

    def save(self, path: Path) -> None:
        atomic_save(self.to_dict(), path)

    @classmethod
    def read(cls, path: str | Path) -> Checkpoint:
        """Load a checkpoint file (or a run folder's ``best.pt``) safely and check it.

        Raises:
            UsageError: a missing file, or one that is not a readable insvp checkpoint of a format this version
                reads; the message names the file and what is wrong.
        """
        path = checkpoint_file(path)
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated files, pickled code and non-torch files fail in many ways
            raise UsageError(f"checkpoint {path} is not a readable insvp checkpoint ({first_sentence(exc)})") from None
        if not isinstance(raw, dict) or "format_version" not in raw or "state_dict" not in raw:
            raise UsageError(f"checkpoint {path} is not an insvp checkpoint (no format_version/state_dict)")
        missing = [key for key in CHECKPOINT_KEYS if key not in raw]
        if missing:
            raise UsageError(f"checkpoint {path} lacks {', '.join(missing)}; an insvp checkpoint has "
                             f"{', '.join(CHECKPOINT_KEYS)}")
        version = raw["format_version"]
        if not isinstance(version, int) or isinstance(version, bool) or version > CHECKPOINT_FORMAT:
            raise UsageError(f"checkpoint {path} has format {version!r}; this insvp reads <= {CHECKPOINT_FORMAT}")
        try:
            config = config_from_tree(raw["config"], f"checkpoint {path}")
            backbone = BackboneIdentity(**raw["backbone"])
            state = {str(k): v for k, v in raw["state_dict"].items()}
            if not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise TypeError("state_dict holds something else than tensors")
            return cls(config, [str(c) for c in raw["classes"]], state, backbone, int(raw["epoch"]),
                       dict(raw["metrics"]), bool(raw.get("classes_named", True)), path)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"checkpoint {path} is damaged ({first_sentence(exc)})") from None


@dataclass
class ResumePoint:
    """``resume.pt``: the state of a run after a finished epoch, all that continuing it needs.

    Attributes:
        epoch: epochs finished.
        step: optimizer steps taken (the learning rate of the next step follows from it and the config).
        model: the trainable tensors.
        optimizer: the optimizer's state dict (moments; its hyper-parameters come from the config again).
        scaler: the fp16 GradScaler's state (``None`` without one).
        best: ``{"epoch", "val_acc", "state"}`` of the best epoch so far (``state``: its trainable tensors).
        rows: the metric rows of the finished epochs.
    """

    epoch: int
    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scaler: dict[str, Any] | None
    best: dict[str, Any]
    rows: list[dict[str, Any]]

    def save(self, path: Path) -> None:
        state = {"format_version": RESUME_FORMAT, **dataclasses.asdict(self)}
        state["rows"] = json.dumps(self.rows)  # plain text: weights_only loads it whatever the rows hold
        atomic_save(state, path)

    @classmethod
    def read(cls, path: Path, rows: list[dict[str, Any]]) -> ResumePoint:
        """Load ``resume.pt`` safely; a file of format 2 keeps its scheduler's step count.

        Args:
            path: the file.
            rows: the run's ``metrics.jsonl`` rows, for files older than the rows they now carry.

        Raises:
            ValueError: not a resume file of a format this insvp reads (the caller names the file).
        """
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or not isinstance(state.get("format_version"), int):
            raise ValueError("not an insvp resume file (no format_version)")
        if state["format_version"] > RESUME_FORMAT:
            raise ValueError(f"format {state['format_version']}; this insvp reads <= {RESUME_FORMAT}")
        step = state["step"] if "step" in state else state["scheduler"]["last_epoch"]
        epoch = int(state["epoch"])
        kept = json.loads(state["rows"]) if "rows" in state else rows[:epoch]
        return cls(epoch, int(step), state["model"], state["optimizer"], state["scaler"], state["best"], kept)
