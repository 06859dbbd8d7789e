"""Served tasks: one checkpoint each, sharing one frozen backbone in memory wherever that changes nothing.

The promise of parameter-efficient tuning (InsVP, ACM MM 2024, and the comparison methods) is a ~1 MB checkpoint per
task beside one frozen backbone. Tasks share a backbone when their checkpoints name the same one (its identity: the
timm model, weights source and fingerprint that every checkpoint records, the model's keyword arguments and input
size, and whether the method reads the backbone's own classifier) and the backbone stays as it was built:

- a checkpoint that holds backbone weights (``full``: every backbone tensor trains, so it has no fingerprint;
  ``partial`` and ``bias``: some ``backbone.*`` tensors) gets a backbone of its own;
- so does a method that changes the backbone while wrapping it (its modules, hooks, attributes or tensors, tried
  on the meta device by :func:`~.checkpoints.rewrites_backbone`). No registered method does: they run the
  backbone's own modules in their own order (prompts, adapters, key-value prompts) and keep everything they add
  under their prefix, so a shared backbone computes for each task what a private one would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from . import checkpoints
from .checkpoints import Opened, ServedModel
from .settings import TaskSpec


@dataclass
class Task:
    """One served checkpoint.

    Attributes:
        name: its name in the URLs.
        checkpoint: the checkpoint file.
        method: the method's registered name.
        classes: ``classes[label]`` names the label.
        backbone: the backbone's identity as the checkpoint records it (``name``, ``weights``, ``fingerprint``).
        served: the model, its transform and precision.
        shared_with: the other tasks that use the same backbone object (empty: a backbone of its own).
    """

    name: str
    checkpoint: Path
    method: str
    classes: list[str]
    backbone: dict[str, Any]
    served: ServedModel
    shared_with: list[str]

    def describe(self) -> dict[str, Any]:
        """What ``GET /tasks`` says about the task."""
        return {
            "name": self.name, "method": self.method, "classes": self.classes, "checkpoint": str(self.checkpoint),
            "trainable_params": self.served.trainable_params, "extra_params": self.served.extra_params,
            "backbone": {**self.backbone, "shared": bool(self.shared_with), "shared_with": self.shared_with},
        }


def sharing_key(checkpoint: Opened) -> tuple | None:
    """What must be equal for two checkpoints to share a backbone object; ``None``: it needs one of its own."""
    if checkpoint.holds_backbone_weights or checkpoints.rewrites_backbone(checkpoint):
        return None
    cfg = checkpoint.cfg.backbone
    return (cfg.name, cfg.weights, checkpoint.identity["fingerprint"], cfg.img_size,
            json.dumps(cfg.kwargs, sort_keys=True), checkpoint.cfg.method.keep_backbone_classifier)


def load_tasks(specs: Sequence[TaskSpec], device: str = "auto", overrides: Sequence[str] = (),
               on_task: Callable[[TaskSpec, int], None] | None = None) -> dict[str, Task]:
    """Every checkpoint of ``specs`` restored on ``device``, sharing backbones (see the module docstring).

    All checkpoints are read and checked before the first model is built, so a bad one fails in a second.

    Args:
        specs: the tasks' names and checkpoint files.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        overrides: ``--set`` values applied to every checkpoint's config.
        on_task: called with each spec and its position before its model is built (progress).

    Raises:
        UsageError: a bad device, checkpoint or override; a backbone that a checkpoint was not trained on.
    """
    dev = checkpoints.torch_device(device)
    read = [checkpoints.read(spec.checkpoint, tuple(overrides)) for spec in specs]
    keys = [sharing_key(c) for c in read]
    backbones: dict[tuple, nn.Module] = {}
    tasks: dict[str, Task] = {}
    for i, (spec, checkpoint, key) in enumerate(zip(specs, read, keys, strict=True)):
        if on_task is not None:
            on_task(spec, i)
        backbone = None
        if key is not None:
            if key not in backbones:
                backbones[key] = checkpoints.shared_backbone(checkpoint, dev)
            backbone = backbones[key]
        sharing = [s.name for s, k in zip(specs, keys, strict=True) if key is not None and k == key and s != spec]
        tasks[spec.name] = Task(spec.name, checkpoint.path, checkpoint.cfg.method.name, checkpoint.classes,
                                checkpoint.identity, checkpoints.restore(checkpoint, dev, backbone), sharing)
    return tasks
