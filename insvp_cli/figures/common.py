"""What the figures of a checkpoint need: its trained model, with the transform and classes that go with it."""

from __future__ import annotations

import numpy as np
import torch


def denormalise(x: torch.Tensor, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """A normalised image ``(3, H, W)`` -> displayable RGB ``(H, W, 3)`` in [0, 1] (clipped)."""
    # (3, H, W) -> (H, W, 3)
    image = x.detach().float().cpu().permute(1, 2, 0).numpy()
    return np.clip(image * std + mean, 0.0, 1.0)
