"""What the figures of a checkpoint need: its trained model, with the transform and classes that go with it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..backbone import data_config
from ..config import Config
from ..restore import eval_transform, load_checkpoint


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


def denormalise(x: torch.Tensor, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """A normalised image ``(3, H, W)`` -> displayable RGB ``(H, W, 3)`` in [0, 1] (clipped)."""
    # (3, H, W) -> (H, W, 3)
    image = x.detach().float().cpu().permute(1, 2, 0).numpy()
    return np.clip(image * std + mean, 0.0, 1.0)

