"""``?explain=gradcam``: the Grad-CAM of the top class (InsVP, ACM MM 2024, Fig. 3) as PNG images for the API.

The map is :func:`insvp_cli.figures.gradcam.compute_cam`'s, the one ``insvp gradcam`` draws: pytorch-grad-cam on the
method's CAM layer, whose hooks are removed when it returns. On a backbone that other tasks share those hooks would
see their forwards too, so this runs in the model worker thread (:mod:`.batching`), never beside another forward.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..figures.cam import compute_cam, denormalise
from .checkpoints import ServedModel

OVERLAY_ALPHA = 0.5  # the CAM's share of an overlay pixel, as insvp gradcam draws it


def png_base64(pixels: np.ndarray) -> str:
    """An ``(H, W)`` or ``(H, W, 3)`` array in [0, 1] as a base64-encoded 8-bit PNG."""
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def gradcam(served: ServedModel, image: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """The Grad-CAM of the most probable class of one normalised image ``(3, H, W)``.

    Returns:
        ``class`` and its ``probability``, ``heatmap_png`` (the map, grey levels 0..255 for 0..1) and ``overlay_png``
        (the map in the jet colours over the image as the model sees it), both ``H x W`` PNGs in base64.
    """
    from matplotlib import colormaps

    x = image.unsqueeze(0).to(served.device)  # (1, 3, H, W)
    cam, probabilities = compute_cam(served.model, x)
    top = int(probabilities.argmax())
    shown = denormalise(image, served.mean, served.std)  # (H, W, 3) in [0, 1]
    overlay = (1.0 - OVERLAY_ALPHA) * shown + OVERLAY_ALPHA * colormaps["jet"](cam)[..., :3]
    return {"class": classes[top], "probability": float(probabilities[top]), "heatmap_png": png_base64(cam),
            "overlay_png": png_base64(overlay)}
