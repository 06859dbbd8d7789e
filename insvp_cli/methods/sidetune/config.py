"""SidetuneConfig: the hyper-parameters of the ``sidetune`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...config.coerce import bounded
from ...config.limits import MAX_IMAGE_SIZE
from ...config.protocols import VPT_LINEAR_LRS, Protocol, vpt_protocol
from ...config.schema import MethodConfig

# AlexNet's convolutional features need at least 63 px to leave a 1 x 1 map after the last pooling
MIN_SIDE_SIZE = 63


@dataclass
class SidetuneConfig(MethodConfig):
    """Side-tuning hyper-parameters.

    Attributes:
        side_weights: the side network's start: ``torchvision`` (torchvision's ImageNet AlexNet,
            ``IMAGENET1K_V1``, downloaded through torchvision when online or read from its cache), ``none``
            (random init) or a local file (``.pth`` / ``.pt`` / ``.safetensors``) holding a torchvision
            AlexNet state dict (its ``features.*`` keys are used).
        side_image_size: the side network's input size (the image is resized to it); ``None``: as given.
        head_init: VPT's MLP head, as in VPT's comparison (see :class:`~insvp_cli.config.schema.MethodConfig`).
    """

    name: str = "sidetune"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"Sidetune": ()}
    # VPT ships no config of this transfer type: its solver with base-prompt.yaml's settings, its linear grid
    published: ClassVar[Protocol] = vpt_protocol("prompt", 128, 0.1, VPT_LINEAR_LRS)
    side_weights: str = "torchvision"
    side_image_size: int | None = bounded(224, ge=MIN_SIDE_SIZE, le=MAX_IMAGE_SIZE)
    head_init: Literal["torch", "vpt", "trunc_normal"] = "vpt"
