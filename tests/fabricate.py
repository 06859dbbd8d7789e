"""Small copies of each dataset in its REAL on-disk format, written into a test's temporary folder.

Each ``make_<name>(root)`` writes the files the way the dataset's distributors ship them (and the way
torchvision's dataset classes read them) and returns the sizes that ``load_splits`` must find with
``val_fraction=0.2`` where a validation split is carved. Images are tiny but real (PNG/JPEG/PPM).
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

VAL_FRACTION = 0.2


def held_out(per_class: int) -> int:
    """Validation images carved from a class of ``per_class`` (rounded half up, like ``seeded_split``)."""
    return int(VAL_FRACTION * per_class + 0.5)


@dataclass(frozen=True)
class Expected:
    """What ``load_splits`` must find: split sizes and the number of classes."""

    train: int
    val: int
    test: int
    classes: int


def image_bytes(fmt: str = "JPEG", size: int = 4, seed: int = 0) -> bytes:
    """One small encoded RGB image."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, fmt)
    return buf.getvalue()


def write_images(paths: list[Path], fmt: str = "JPEG") -> None:
    """The same small image at every path (one encoding, many writes: fast for thousands of files)."""
    data = image_bytes(fmt)
    made: set[Path] = set()
    for path in paths:
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(data)


def _pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------
# torchvision-backed sets


def make_cifar10(root: Path, per_batch_per_class: int = 2, test_per_class: int = 2) -> Expected:
    """``cifar-10-batches-py``: five training pickles, ``test_batch`` and ``batches.meta`` (latin-1 pickles
    of dicts with ``data`` (N, 3072) uint8 rows in channel-major order and ``labels``)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def batch(label_name: str, per_class: int, seed: int) -> dict:
        labels = [c for c in range(10) for _ in range(per_class)]
        data = _pixels(len(labels), seed).transpose(0, 3, 1, 2).reshape(len(labels), 3072)  # HWC -> CHW rows
        return {"batch_label": label_name, "labels": labels, "data": data,
                "filenames": [f"img_{seed}_{i}.png" for i in range(len(labels))]}

    for i in range(1, 6):
        content = batch(f"training batch {i} of 5", per_batch_per_class, i)
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(content))
    (folder / "test_batch").write_bytes(pickle.dumps(batch("testing batch 1 of 1", test_per_class, 99)))
    (folder / "batches.meta").write_bytes(pickle.dumps({"num_cases_per_batch": 10 * per_batch_per_class,
                                                        "label_names": names, "num_vis": 3072}))
    per_class = 5 * per_batch_per_class
    val = 10 * held_out(per_class)
    return Expected(10 * per_class - val, val, 10 * test_per_class, 10)


def make_cifar100(root: Path, per_class: int = 5, test_per_class: int = 1) -> Expected:
    """``cifar-100-python``: ``train``, ``test`` (with ``fine_labels`` and ``coarse_labels``) and ``meta``."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)

    def split(per: int, seed: int) -> dict:
        fine = [c for c in range(100) for _ in range(per)]
        return {"filenames": [f"{seed}_{i}.png" for i in range(len(fine))], "batch_label": "batch",
                "fine_labels": fine, "coarse_labels": [c // 5 for c in fine],
                "data": _pixels(len(fine), seed).transpose(0, 3, 1, 2).reshape(len(fine), 3072)}

    (folder / "train").write_bytes(pickle.dumps(split(per_class, 1)))
    (folder / "test").write_bytes(pickle.dumps(split(test_per_class, 2)))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": [f"class_{c:03d}" for c in range(100)],
                                                "coarse_label_names": [f"super_{c:02d}" for c in range(20)]}))
    val = 100 * held_out(per_class)
    return Expected(100 * per_class - val, val, 100 * test_per_class, 100)


def make_svhn(root: Path, per_class: int = 5, test_per_class: int = 2) -> Expected:
    """``train_32x32.mat`` / ``test_32x32.mat``: ``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) with 10 for zero."""
    root.mkdir(parents=True, exist_ok=True)
    for name, per, seed in (("train", per_class, 1), ("test", test_per_class, 2)):
        digits = np.array([d for d in range(10) for _ in range(per)])
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(root / f"{name}_32x32.mat", {"X": _pixels(len(digits), seed).transpose(1, 2, 3, 0), "y": y})
    val = 10 * held_out(per_class)
    return Expected(10 * per_class - val, val, 10 * test_per_class, 10)


def make_gtsrb(root: Path, classes: int = 4, per_class: int = 5, test_per_class: int = 2) -> Expected:
    """``gtsrb/GTSRB/Training/<00000>/<track>_<frame>.ppm`` with a ``GT-<class>.csv`` per class folder;
    ``gtsrb/GTSRB/Final_Test/Images/<n>.ppm`` with the ground truth in ``gtsrb/GT-final_test.csv``."""
    base = root / "gtsrb"
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
    ppm = image_bytes("PPM", size=6)
    for c in range(classes):
        folder = base / "GTSRB" / "Training" / f"{c:05d}"
        folder.mkdir(parents=True)
        rows = [header]
        for i in range(per_class):
            name = f"00000_{i:05d}.ppm"
            (folder / name).write_bytes(ppm)
            rows.append(f"{name};6;6;1;1;5;5;{c}")
        (folder / f"GT-{c:05d}.csv").write_text("\n".join(rows) + "\n")
    images = base / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True)
    rows = [header]
    for i in range(classes * test_per_class):
        name = f"{i:05d}.ppm"
        (images / name).write_bytes(ppm)
        rows.append(f"{name};6;6;1;1;5;5;{i % classes}")
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    val = classes * held_out(per_class)
    return Expected(classes * per_class - val, val, classes * test_per_class, classes)


def make_food101(root: Path, per_class: int = 5, test_per_class: int = 2) -> Expected:
    """``food-101/meta/{train,test}.json`` ({class: ["class/id", ...]}), ``classes.txt``, ``labels.txt`` and
    ``food-101/images/<class>/<id>.jpg``."""
    classes = ["apple_pie", "baby_back_ribs", "baklava"]
    base = root / "food-101"
    (base / "meta").mkdir(parents=True)
    meta: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    image_id = 1000
    for c in classes:
        for split, n in (("train", per_class), ("test", test_per_class)):
            meta[split][c] = [f"{c}/{image_id + i}" for i in range(n)]
            image_id += n
    for split, content in meta.items():
        (base / "meta" / f"{split}.json").write_text(json.dumps(content))
        write_images([base / "images" / f"{rel}.jpg" for rels in content.values() for rel in rels])
    (base / "meta" / "classes.txt").write_text("\n".join(classes) + "\n")
    (base / "meta" / "labels.txt").write_text("\n".join(c.replace("_", " ").title() for c in classes) + "\n")
    val = len(classes) * held_out(per_class)
    return Expected(len(classes) * per_class - val, val, len(classes) * test_per_class, len(classes))


def make_dtd(root: Path, per_split: int = 2) -> Expected:
    """``dtd/dtd/images/<class>/<class>_NNNN.jpg`` and ``dtd/dtd/labels/{train,val,test}{1..10}.txt``
    (lines ``class/file.jpg``). Partition 2 lists other files, so reading it by mistake shows."""
    classes = ["banded", "blotchy", "braided"]
    data = root / "dtd" / "dtd"
    (data / "labels").mkdir(parents=True)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    number = 1
    for c in classes:
        for split in lines:
            for _ in range(per_split):
                lines[split].append(f"{c}/{c}_{number:04d}.jpg")
                number += 1
    write_images([data / "images" / line for split in lines.values() for line in split])
    for split, entries in lines.items():
        (data / "labels" / f"{split}1.txt").write_text("\n".join(entries) + "\n")
        (data / "labels" / f"{split}2.txt").write_text("\n".join(entries[: len(classes)]) + "\n")
    n = len(classes) * per_split
    return Expected(n, n, n, len(classes))


def make_flowers102(root: Path) -> Expected:
    """``flowers-102/jpg/image_NNNNN.jpg``, ``imagelabels.mat`` (``labels`` 1..102 by image id) and ``setid.mat``
    (``trnid`` / ``valid`` / ``tstid`` row vectors of 1-based image ids)."""
    base = root / "flowers-102"
    labels = np.array([1, 1, 2, 2, 3, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3], dtype=np.uint8)  # image ids 1..15
    ids = np.arange(1, len(labels) + 1)
    write_images([base / "jpg" / f"image_{i:05d}.jpg" for i in ids])
    scipy.io.savemat(base / "imagelabels.mat", {"labels": labels.reshape(1, -1)})
    scipy.io.savemat(base / "setid.mat", {"trnid": ids[:6].reshape(1, -1).astype(np.uint16),
                                          "valid": ids[6:9].reshape(1, -1).astype(np.uint16),
                                          "tstid": ids[9:].reshape(1, -1).astype(np.uint16)})
    return Expected(6, 3, 6, 102)


# ---------------------------------------------------------------------------------------------------
# VPT FGVC splits and image folders

FGVC_SPLIT_FOLDERS = {"cub": "cub", "nabirds": "nabirds", "oxford_flowers": "oxfordflower",
                      "stanford_dogs": "stanforddogs", "stanford_cars": "stanfordcars"}
FGVC_IMAGE_DIRS = {"cub": "images", "nabirds": "images", "oxford_flowers": "", "stanford_dogs": "Images",
                   "stanford_cars": ""}
FGVC_COUNTS = {"cub": Expected(5394, 600, 5794, 200), "nabirds": Expected(21536, 2393, 24633, 555),
               "oxford_flowers": Expected(1020, 1020, 6149, 102), "stanford_dogs": Expected(10800, 1200, 8580, 120),
               "stanford_cars": Expected(7329, 815, 8041, 196)}


def make_fgvc(name: str, root: Path, shared: Path, images: str = "all") -> Expected:
    """A VPT FGVC tree from the real split files in ``shared/data/fgvc-splits``.

    Args:
        name: the dataset name.
        root: where to build the tree; the JSON files go into it (``split_dir`` defaults to the root).
        shared: the ``shared`` folder beside the checkout.
        images: ``all`` writes a tiny image at every listed path; ``few`` only the first 3 of each split
            (reading labels needs no image; ``insvp data check`` would report the rest missing).
    """
    source = shared / "data" / "fgvc-splits" / FGVC_SPLIT_FOLDERS[name]
    image_root = root / FGVC_IMAGE_DIRS[name]
    image_root.mkdir(parents=True, exist_ok=True)
    paths = []
    for split in ("train", "val", "test"):
        shutil.copy(source / f"{split}.json", root / f"{split}.json")
        listed = list(json.loads((source / f"{split}.json").read_text()))
        paths += [image_root / rel for rel in (listed if images == "all" else listed[:3])]
    write_images(paths)
    return FGVC_COUNTS[name]


def make_imagefolder(root: Path, with_val: bool = False, per_class: int = 5, test_per_class: int = 2) -> Expected:
    """``train/<class>/*.png``, ``test/<class>/*.png`` and, with ``with_val``, ``val/<class>/*.png``."""
    classes = ["cat", "dog", "owl"]
    paths = []
    for c in classes:
        paths += [root / "train" / c / f"{i}.png" for i in range(per_class)]
        paths += [root / "test" / c / f"{i}.png" for i in range(test_per_class)]
        if with_val:
            paths += [root / "val" / c / f"{i}.png" for i in range(2)]
    write_images(paths, fmt="PNG")
    if with_val:
        return Expected(3 * per_class, 6, 3 * test_per_class, 3)
    val = 3 * held_out(per_class)
    return Expected(3 * per_class - val, val, 3 * test_per_class, 3)


VTAB_SIZES = {"train800": 2, "val200": 1, "test": 2}  # images per class in each fabricated list


def make_vtab(root: Path, classes: int = 3) -> Expected:
    """One VTAB-1k task folder: ``images/<split>/NNNNNN.jpg`` and ``train800.txt``, ``val200.txt``,
    ``train800val200.txt`` (the union of the first two, as released) and ``test.txt``, lines ``<path> <label>``.

    Returns the sizes of the default ``tune`` protocol (train800 / val200 / test).
    """
    lines: dict[str, list[str]] = {name: [] for name in VTAB_SIZES}
    folder = {"train800": "train", "val200": "train", "test": "test"}  # val200 images sit in images/train
    counters = {"train": 0, "test": 0}
    for name, per_class in VTAB_SIZES.items():
        for label in range(classes):
            for _ in range(per_class):
                split = folder[name]
                lines[name].append(f"images/{split}/{counters[split]:06d}.jpg {label}")
                counters[split] += 1
    lines["train800val200"] = lines["train800"] + lines["val200"]
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in lines.items():
        (root / f"{name}.txt").write_text("\n".join(rows) + "\n")
    write_images([root / "images" / split / f"{i:06d}.jpg" for split, n in counters.items() for i in range(n)])
    return Expected(*(classes * VTAB_SIZES[name] for name in ("train800", "val200", "test")), classes)
