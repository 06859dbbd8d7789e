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


def build_transforms(cfg: DataConfig, data_cfg: Mapping[str, Any], flip: bool) -> tuple[T.Compose, T.Compose]:
    """The (train, eval) transforms: RGB PIL image -> normalised float tensor (3, H, W).

    Args:
        cfg: the ``data`` config (``image_size``, ``resize``, ``augment``).
        data_cfg: the backbone's data config (``input_size``, ``mean``, ``std``, ``interpolation``).
        flip: whether a horizontal flip keeps this dataset's labels.
    """
    height, width = input_size(cfg, data_cfg)
    interpolation = _interpolation(data_cfg)
    normalize = [T.ToTensor(), T.Normalize(mean=list(data_cfg["mean"]), std=list(data_cfg["std"]))]
    resize = T.Resize(resize_size(cfg, data_cfg), interpolation=interpolation)
    if cfg.resize == "direct":
        geometry = [resize]
        train_geometry = list(geometry)
    else:
        geometry = [resize, T.CenterCrop((height, width))]
        train_geometry = [resize, T.RandomCrop((height, width))]
    eval_tf = T.Compose([*geometry, *normalize])
    if not cfg.augment:
        return T.Compose([*geometry, *normalize]), eval_tf
    flips = [T.RandomHorizontalFlip()] if flip else []
    return T.Compose([*train_geometry, *flips, *normalize]), eval_tf


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
