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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from ..config import DataConfig

RESIZE_RATIO = 256 / 224  # VPT / release: Resize(256) before a 224 crop


def input_size(cfg: DataConfig, data_cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(H, W) fed to the model: ``data.image_size`` if set, else the backbone's ``input_size``."""
    if cfg.image_size is not None:
        return cfg.image_size, cfg.image_size
    _, height, width = data_cfg["input_size"]
    return int(height), int(width)


def build_transforms(cfg: DataConfig, data_cfg: Mapping[str, Any], flip: bool) -> tuple[T.Compose, T.Compose]:
    """The (train, eval) transforms: RGB PIL image -> normalised float tensor (3, H, W).

    Args:
        cfg: the ``data`` config (``image_size``, ``resize``, ``augment``).
        data_cfg: the backbone's data config (``input_size``, ``mean``, ``std``, ``interpolation``).
        flip: whether a horizontal flip keeps this dataset's labels.
    """
    height, width = input_size(cfg, data_cfg)
    interpolation = InterpolationMode(data_cfg.get("interpolation", "bilinear"))
    normalize = [T.ToTensor(), T.Normalize(mean=list(data_cfg["mean"]), std=list(data_cfg["std"]))]
    if cfg.resize == "direct":
        geometry = [T.Resize((height, width), interpolation=interpolation)]
        train_geometry = list(geometry)
    else:
        # an int resizes the shorter side and keeps the aspect ratio; a non-square input needs both sides
        scaled = (int(height * RESIZE_RATIO) if height == width
                  else (int(height * RESIZE_RATIO), int(width * RESIZE_RATIO)))
        geometry = [T.Resize(scaled, interpolation=interpolation), T.CenterCrop((height, width))]
        train_geometry = [T.Resize(scaled, interpolation=interpolation), T.RandomCrop((height, width))]
    eval_tf = T.Compose([*geometry, *normalize])
    if not cfg.augment:
        return T.Compose([*geometry, *normalize]), eval_tf
    flips = [T.RandomHorizontalFlip()] if flip else []
    return T.Compose([*train_geometry, *flips, *normalize]), eval_tf
