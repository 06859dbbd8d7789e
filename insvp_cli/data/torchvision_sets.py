"""The HTA datasets that torchvision reads (InsVP, ACM MM 2024, §4.1): CIFAR-10/100, SVHN, GTSRB, Food-101,
DTD (partition 1) and Flowers-102, in torchvision's on-disk layout.

torchvision's own dataset classes parse the files (and download them when ``data.download`` is true);
their samples are then moved into :class:`ImageArrays` (CIFAR, SVHN: pixels already in memory) or
:class:`ImageFiles` (the rest), so class subsets, validation carving and bad-image handling work the
same for every dataset. DTD and Flowers-102 have official validation splits; for the others the
validation set is carved from the official training set (``data.val_fraction``, seeded).
"""

from __future__ import annotations

import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import UsageError
from ..config.schema import DataConfig
from .base import ImageArrays, ImageFiles, LabelledImages, Parts
from .registry import register_dataset, require_root


def _torchvision(name: str) -> type:
    """torchvision's dataset class ``name``, imported when a dataset is read (``insvp data list`` needs no torch)."""
    from torchvision import datasets

    return getattr(datasets, name)


DIGIT_NAMES = [str(d) for d in range(10)]


def _open(cfg: DataConfig, layout: str, make: Callable[..., Any], **kwargs: Any) -> Any:
    """``make(root=..., download=..., **kwargs)`` with torchvision's errors turned into usage errors."""
    root = require_root(cfg, layout, download_hint=True)
    try:
        return make(root=str(root), download=cfg.download, **kwargs)
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise UsageError(f"{cfg.name}: downloading into {root} failed ({reason}); without network, "
                         f"place the files yourself: expected {layout}") from None
    except (RuntimeError, FileNotFoundError) as exc:
        # torchvision: "Dataset not found or corrupted" (also for a file whose MD5 does not match), or a
        # metadata file missing from an otherwise present tree
        raise UsageError(f"{cfg.name}: {root} is missing or incomplete ({exc}); expected {layout}; "
                         "or set data.download=true to let torchvision download it (needs network)") from None


def _files(ds: Any) -> ImageFiles:
    """The (path, label) list of a torchvision file-based dataset as :class:`ImageFiles`."""
    # Food101, DTD and Flowers102 keep `_image_files` / `_labels`, GTSRB keeps `_samples`; both have been
    # stable since torchvision 0.12, and the tests build each dataset from a fabricated tree.
    if hasattr(ds, "_samples"):
        paths, labels = zip(*ds._samples, strict=True) if ds._samples else ((), ())
    else:
        paths, labels = ds._image_files, ds._labels
    return ImageFiles(list(paths), list(labels))


def _same_classes(cfg: DataConfig, *splits: Any) -> list[str]:
    """The class list shared by all splits (torchvision derives it from each split's own metadata)."""
    first = list(splits[0].classes)
    if any(list(s.classes) != first for s in splits[1:]):
        raise UsageError(f"{cfg.name}: the split files under {cfg.root} do not list the same classes")
    return first


def _arrays(images: np.ndarray, labels: Any) -> LabelledImages:
    return ImageArrays(np.ascontiguousarray(images), [int(y) for y in labels])


CIFAR10_LAYOUT = ("<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta} "
                  "(cifar-10-python.tar.gz extracted into <root>)")
CIFAR100_LAYOUT = "<root>/cifar-100-python/{train, test, meta} (cifar-100-python.tar.gz extracted into <root>)"
SVHN_LAYOUT = "<root>/train_32x32.mat and <root>/test_32x32.mat (the cropped-digits format)"
GTSRB_LAYOUT = ("<root>/gtsrb/GTSRB/Training/<00000..00042>/*.ppm, <root>/gtsrb/GTSRB/Final_Test/Images/*.ppm "
                "and <root>/gtsrb/GT-final_test.csv")
FOOD101_LAYOUT = "<root>/food-101/meta/{train,test}.json and <root>/food-101/images/<class>/<id>.jpg"
DTD_LAYOUT = ("<root>/dtd/dtd/images/<class>/*.jpg and <root>/dtd/dtd/labels/{train,val,test}1.txt "
              "(dtd-r1.0.1.tar.gz extracted into <root>/dtd)")
FLOWERS102_LAYOUT = "<root>/flowers-102/jpg/image_NNNNN.jpg, <root>/flowers-102/imagelabels.mat and setid.mat"


@register_dataset("cifar10", flip=True, layout=CIFAR10_LAYOUT, summary="CIFAR-10, 10 classes (torchvision)")
def read_cifar10(cfg: DataConfig) -> Parts:
    """CIFAR-10: 50,000 train / 10,000 test images of 32x32."""
    train, test = (_open(cfg, CIFAR10_LAYOUT, _torchvision("CIFAR10"), train=flag) for flag in (True, False))
    return Parts(_arrays(train.data, train.targets), None, _arrays(test.data, test.targets), list(train.classes))


@register_dataset("cifar100", flip=True, layout=CIFAR100_LAYOUT, summary="CIFAR-100, 100 classes (torchvision)")
def read_cifar100(cfg: DataConfig) -> Parts:
    """CIFAR-100 (fine labels): 50,000 train / 10,000 test images of 32x32."""
    train, test = (_open(cfg, CIFAR100_LAYOUT, _torchvision("CIFAR100"), train=flag) for flag in (True, False))
    return Parts(_arrays(train.data, train.targets), None, _arrays(test.data, test.targets), list(train.classes))


@register_dataset("svhn", flip=False, layout=SVHN_LAYOUT, summary="SVHN cropped digits, 10 classes (torchvision)")
def read_svhn(cfg: DataConfig) -> Parts:
    """SVHN: 73,257 train / 26,032 test digits of 32x32 (label 10 in the files is the digit 0)."""
    train, test = (_open(cfg, SVHN_LAYOUT, _torchvision("SVHN"), split=split) for split in ("train", "test"))
    # torchvision keeps (N, 3, H, W); ImageArrays wants (N, H, W, 3)
    return Parts(_arrays(train.data.transpose(0, 2, 3, 1), train.labels), None,
                 _arrays(test.data.transpose(0, 2, 3, 1), test.labels), list(DIGIT_NAMES))


@register_dataset("gtsrb", flip=False, layout=GTSRB_LAYOUT, summary="German traffic signs, 43 classes (torchvision)")
def read_gtsrb(cfg: DataConfig) -> Parts:
    """GTSRB: 26,640 train / 12,630 test images (a flip would turn "keep left" into "keep right")."""
    from torchvision.datasets.folder import find_classes

    train, test = (_open(cfg, GTSRB_LAYOUT, _torchvision("GTSRB"), split=split) for split in ("train", "test"))
    classes, _ = find_classes(Path(cfg.root).expanduser() / "gtsrb" / "GTSRB" / "Training")
    return Parts(_files(train), None, _files(test), classes)


@register_dataset("food101", flip=True, layout=FOOD101_LAYOUT, summary="Food-101, 101 classes (torchvision)")
def read_food101(cfg: DataConfig) -> Parts:
    """Food-101: 75,750 train / 25,250 test images."""
    train, test = (_open(cfg, FOOD101_LAYOUT, _torchvision("Food101"), split=split) for split in ("train", "test"))
    return Parts(_files(train), None, _files(test), _same_classes(cfg, train, test))


@register_dataset("dtd", flip=True, layout=DTD_LAYOUT, summary="Describable Textures, partition 1, 47 classes")
def read_dtd(cfg: DataConfig) -> Parts:
    """DTD, official partition 1: 1,880 train / 1,880 val / 1,880 test images."""
    train, val, test = (_open(cfg, DTD_LAYOUT, _torchvision("DTD"), split=split, partition=1)
                        for split in ("train", "val", "test"))
    return Parts(_files(train), _files(val), _files(test), _same_classes(cfg, train, val, test))


@register_dataset("flowers102", flip=True, layout=FLOWERS102_LAYOUT, summary="Oxford Flowers-102 (torchvision)")
def read_flowers102(cfg: DataConfig) -> Parts:
    """Oxford Flowers-102, official splits: 1,020 train / 1,020 val / 6,149 test images."""
    flowers = _torchvision("Flowers102")
    train, val, test = (_open(cfg, FLOWERS102_LAYOUT, flowers, split=s) for s in ("train", "val", "test"))
    return Parts(_files(train), _files(val), _files(test), list(flowers.classes))
