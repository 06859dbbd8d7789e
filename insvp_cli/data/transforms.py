"""Train and eval transforms from the backbone's data config (InsVP, ACM MM 2024, §4.1; docs/method.md §4).

The backbone decides the input size, mean, std and interpolation (timm's pretrained cfg, see
:func:`insvp_cli.backbone.data_config`). The crop geometry is the one VPT and the InsVP release use:

- ``resize: crop`` (default): train ``Resize(size * 256/224) -> RandomCrop(size) -> RandomHorizontalFlip``,
  eval ``Resize(size * 256/224) -> CenterCrop(size)``; at 224 px exactly Resize(256) / crop 224.
- ``resize: direct`` (VTAB style): ``Resize((size, size))`` with no crop; training adds only the flip.
- ``augment: false``: training uses the eval transform (no random crop, no flip).
- the flip is left out for datasets where it changes the label (digits, house numbers, traffic signs).

The resize ratio is fixed at 256/224 rather than taken from the model's ``crop_pct`` (0.9 for the
ImageNet-21k ViT-B/16 tags), because the paper's numbers were produced with Resize(256).

Each transform is a :class:`Preprocess` in two stages: the resize (PIL, the same for training and evaluation, the
expensive part: what :mod:`.cache` keeps as uint8 tensors) and ``finish`` (crop, flip, scaling to ``[0, 1]``,
normalisation) on the resized uint8 tensor. The pixels are those of ``ToTensor`` after the same PIL operations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from ..config.schema import DataConfig

RESIZE_RATIO = 256 / 224  # VPT / release: Resize(256) before a 224 crop


def input_size(cfg: DataConfig, data_cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(H, W) fed to the model: ``data.image_size`` if set, else the backbone's ``input_size``."""
    if cfg.image_size is not None:
        return cfg.image_size, cfg.image_size
    _, height, width = data_cfg["input_size"]
    return int(height), int(width)


def resize_size(cfg: DataConfig, data_cfg: Mapping[str, Any]) -> int | tuple[int, int]:
    """The evaluation resize: an int resizes the shorter side keeping the aspect ratio, ``(H, W)`` resizes exactly.

    ``resize: direct`` resizes straight to the input size; ``crop`` resizes by :data:`RESIZE_RATIO` before the
    centre crop (a non-square input needs both sides).
    """
    height, width = input_size(cfg, data_cfg)
    if cfg.resize == "direct":
        return height, width
    if height == width:
        return int(height * RESIZE_RATIO)
    return int(height * RESIZE_RATIO), int(width * RESIZE_RATIO)


@dataclass(frozen=True)
class Preprocess:
    """RGB PIL image -> normalised float tensor ``(3, H, W)``: :meth:`resize`, then ``finish`` on its uint8 tensor.

    Attributes:
        size: the resize (an int: the shorter side; ``(H, W)``: exactly).
        interpolation: the resize's filter.
        finish: uint8 tensor ``(3, h, w)`` -> float tensor ``(3, H, W)`` (crop, flip, scale, normalise); its random
            draws (crop, flip) come from torch's global generator, which the loader seeds per sample.
    """

    size: int | tuple[int, int]
    interpolation: InterpolationMode
    finish: Callable[[torch.Tensor], torch.Tensor]

    def resize(self, image: Image.Image) -> torch.Tensor:
        """The resized image as a uint8 tensor ``(3, h, w)``: the deterministic, cacheable stage."""
        return F.pil_to_tensor(F.resize(image, self.size, interpolation=self.interpolation))

    @property
    def resize_key(self) -> tuple[Any, ...]:
        """Equal for two transforms whose :meth:`resize` gives the same pixels (a cache made for one serves both)."""
        return (self.size, self.interpolation)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.finish(self.resize(image))


def build_transforms(cfg: DataConfig, data_cfg: Mapping[str, Any], flip: bool) -> tuple[Preprocess, Preprocess]:
    """The (train, eval) transforms: RGB PIL image -> normalised float tensor (3, H, W).

    Args:
        cfg: the ``data`` config (``image_size``, ``resize``, ``augment``).
        data_cfg: the backbone's data config (``input_size``, ``mean``, ``std``, ``interpolation``).
        flip: whether a horizontal flip keeps this dataset's labels.
    """
    height, width = input_size(cfg, data_cfg)
    # uint8 -> float / 255, exactly ToTensor's scaling, then the backbone's normalisation
    normalize = [T.ConvertImageDtype(torch.float32),
                 T.Normalize(mean=list(data_cfg["mean"]), std=list(data_cfg["std"]))]
    if cfg.resize == "direct":
        geometry, train_geometry = [], []
    else:
        geometry, train_geometry = [T.CenterCrop((height, width))], [T.RandomCrop((height, width))]
    flips = [T.RandomHorizontalFlip()] if flip and cfg.augment else []
    train_steps = [*train_geometry, *flips] if cfg.augment else geometry

    def preprocess(steps: list) -> Preprocess:
        return Preprocess(resize_size(cfg, data_cfg), _interpolation(data_cfg), T.Compose([*steps, *normalize]))

    return preprocess(train_steps), preprocess(geometry)


def _interpolation(data_cfg: Mapping[str, Any]) -> InterpolationMode:
    return InterpolationMode(data_cfg.get("interpolation", "bilinear"))


def preprocess_spec(cfg: DataConfig, data_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluation transform as plain data, enough to redo it with PIL and numpy alone (``preprocess.json``).

    Keys: ``resize`` (``{"shorter_side": n}``: the shorter side becomes ``n`` and the longer one
    ``int(n * long / short)``; or ``{"height": h, "width": w}``), ``center_crop`` (``{"height", "width"}``,
    the offsets ``round((size - crop) / 2)``; ``None`` for no crop), ``interpolation`` (a PIL resampling
    filter name, lower case), ``mean`` and ``std`` (per RGB channel, applied to ``pixel / 255``).
    """
    height, width = input_size(cfg, data_cfg)
    size = resize_size(cfg, data_cfg)
    return {
        "resize": {"shorter_side": size} if isinstance(size, int) else {"height": size[0], "width": size[1]},
        "center_crop": None if cfg.resize == "direct" else {"height": height, "width": width},
        "interpolation": _interpolation(data_cfg).value,
        "mean": [float(m) for m in data_cfg["mean"]],
        "std": [float(s) for s in data_cfg["std"]],
    }
