"""Training-split sizes of the paper's datasets, for the image-step estimates of ``insvp reproduce --dry-run``.

Known sizes instead of reading the data: a dry run must work before the data is there. Counts are the
official ones (docs/method.md §4): the FGVC sets' ``train.json`` (their validation split is separate), DTD partition 1
and Flowers-102's official train split, and the whole official training set of the sets whose validation
split is carved from it (``data.val_fraction`` of it is then held out).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config.schema import Config, DataConfig
from ...data.vtab import TRAIN_SIZES as VTAB_TRAIN_SIZES


@dataclass(frozen=True)
class KnownSize:
    """Attributes: images of the training split as distributed, classes, whether validation is carved from it."""

    images: int
    classes: int
    carved: bool


KNOWN_SIZES: dict[str, KnownSize] = {
    "cifar10": KnownSize(50_000, 10, True),
    "cifar100": KnownSize(50_000, 100, True),
    "svhn": KnownSize(73_257, 10, True),
    "gtsrb": KnownSize(26_640, 43, True),
    "food101": KnownSize(75_750, 101, True),
    "dtd": KnownSize(1_880, 47, False),
    "flowers102": KnownSize(1_020, 102, False),
    "cub": KnownSize(5_394, 200, False),
    "nabirds": KnownSize(21_536, 555, False),
    "oxford_flowers": KnownSize(1_020, 102, False),
    "stanford_dogs": KnownSize(10_800, 120, False),
    "stanford_cars": KnownSize(7_329, 196, False),
    "mnist5k": KnownSize(4_000, 10, True),  # 5,000 less the 20 % test hold-out
    "digits": KnownSize(1_438, 10, True),  # 1,797 less the 20 % test hold-out
}


def train_images(cfg: DataConfig) -> int | None:
    """Estimated training images per epoch for ``cfg`` (``None``: a dataset of unknown size).

    A class subset (``data.classes``) scales the count by its share of the classes (VTAB-1k: ignored).
    """
    if cfg.name == "vtab":
        return VTAB_TRAIN_SIZES[cfg.vtab_protocol]
    known = KNOWN_SIZES.get(cfg.name)
    if known is None:
        return None
    images = known.images * (1.0 - cfg.val_fraction) if known.carved else float(known.images)
    if cfg.classes is not None:
        images *= len(cfg.classes) / known.classes
    return int(images + 0.5)


def image_steps(cfg: Config) -> int | None:
    """Epochs x training images: the images a run pushes through the model (``None`` if unknown)."""
    images = train_images(cfg.data)
    return None if images is None else cfg.train.epochs * images
