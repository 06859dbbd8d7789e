"""Every registered dataset read from a fabricated copy in its real on-disk format (see fabricate.py)."""

from __future__ import annotations

import json
import os
import urllib.error
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
import torchvision.datasets.flowers102
import torchvision.datasets.svhn
from fabricate import (
    FGVC_COUNTS,
    VAL_FRACTION,
    Expected,
    make_cifar10,
    make_cifar100,
    make_dtd,
    make_fgvc,
    make_flowers102,
    make_food101,
    make_gtsrb,
    make_imagefolder,
    make_svhn,
    make_vtab,
)

from insvp_cli.common.errors import UsageError
from insvp_cli.config.schema import DataConfig
from insvp_cli.data.registry import DATASETS
from insvp_cli.data.splits import build_splits, load_splits

TINY = {"input_size": (3, 16, 16), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "interpolation": "bilinear",
        "crop_pct": 0.9}

FABRICATORS = {
    "cifar10": make_cifar10,
    "cifar100": make_cifar100,
    "svhn": make_svhn,
    "gtsrb": make_gtsrb,
    "food101": make_food101,
    "dtd": make_dtd,
    "flowers102": make_flowers102,
    "imagefolder": make_imagefolder,
    "vtab": make_vtab,
    # package data: nothing to write; the sizes follow from 20 % test and VAL_FRACTION of the rest, per class
    "mnist5k": lambda root: Expected(3200, 800, 1000, 10),
    "digits": lambda root: Expected(1151, 287, 359, 10),
    **{name: partial(make_fgvc, name, images="few") for name in FGVC_COUNTS},
}
NEEDS_ROOT = [name for name in FABRICATORS if name not in ("mnist5k", "digits")]
TORCHVISION_SETS = ["cifar10", "cifar100", "svhn", "gtsrb", "food101", "dtd", "flowers102"]


@pytest.fixture
def no_md5(monkeypatch):
    """Fabricated files cannot match the published MD5 sums that torchvision checks; check existence only.

    Everything else torchvision does (paths, parsing) runs unchanged.
    """
    def exists(fpath, md5=None):
        return os.path.isfile(fpath)

    for module in (torchvision.datasets.cifar, torchvision.datasets.svhn, torchvision.datasets.flowers102):
        monkeypatch.setattr(module, "check_integrity", exists)


@pytest.fixture
def fabricated(request, tmp_path, no_md5):
    """(DataConfig, Expected) for the dataset named by the test's ``name`` parameter."""
    name = request.node.callspec.params["name"]
    root = tmp_path / name
    if name in FGVC_COUNTS:
        expected = FABRICATORS[name](root, request.getfixturevalue("shared_dir"))
    else:
        expected = FABRICATORS[name](root)
    cfg = DataConfig(name=name, root=str(root), val_fraction=VAL_FRACTION, num_workers=0)
    return cfg, expected


def test_every_registered_dataset_has_a_fabricated_copy():
    assert sorted(FABRICATORS) == DATASETS.names()


@pytest.mark.parametrize("name", DATASETS.names())
def test_reads_the_real_layout(name, fabricated):
    cfg, expected = fabricated
    splits = load_splits(cfg)
    assert (len(splits.train), len(splits.val), len(splits.test), len(splits.classes)) == (
        expected.train, expected.val, expected.test, expected.classes)
    for ds in (splits.train, splits.val, splits.test):
        assert ds.labels.min() >= 0 and ds.labels.max() < len(splits.classes)
    assert len(set(splits.classes)) == len(splits.classes)


@pytest.mark.parametrize("name", DATASETS.names())
def test_splits_never_overlap(name, fabricated):
    cfg, _ = fabricated
    splits = load_splits(cfg)
    files = [ds.files() for ds in (splits.train, splits.val, splits.test)]
    if files[0] is not None:
        train, val, test = (set(f) for f in files)
        assert len(train) == len(splits.train)  # no file listed twice in a split
        assert not train & val and not train & test and not val & test
    else:  # images in memory: train and the carved validation set select from the same array
        assert not set(splits.train.indices) & set(splits.val.indices)


@pytest.mark.parametrize("name", DATASETS.names())
def test_split_is_deterministic_under_a_seed(name, fabricated):
    cfg, _ = fabricated
    first, again = load_splits(cfg), load_splits(cfg)
    other = load_splits(DataConfig(**{**cfg.__dict__, "seed": 1}))
    for a, b in ((first.train, again.train), (first.val, again.val), (first.test, again.test)):
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.labels, b.labels)
    if name not in ("dtd", "flowers102", "imagefolder", "vtab", *FGVC_COUNTS):  # carved validation sets only
        assert not np.array_equal(first.val.indices, other.val.indices)


@pytest.mark.parametrize("name", DATASETS.names())
def test_yields_normalised_rgb_tensors(name, fabricated):
    cfg, _ = fabricated
    splits = build_splits(cfg, TINY)
    for ds in (splits.train, splits.val, splits.test):
        image, label = ds[0]
        assert image.shape == (3, 16, 16) and image.dtype == torch.float32
        assert isinstance(label, int) and 0 <= label < len(splits.classes)


@pytest.mark.parametrize("name", NEEDS_ROOT)
def test_missing_root_is_a_usage_error_naming_the_layout(name, tmp_path):
    layout = DATASETS.get(name).layout
    with pytest.raises(UsageError, match="data.root is not set") as unset:
        load_splits(DataConfig(name=name))
    assert layout in str(unset.value)
    with pytest.raises(UsageError, match="is not a folder"):
        load_splits(DataConfig(name=name, root=str(tmp_path / "nowhere")))
    with pytest.raises(UsageError, match="expected") as empty:
        load_splits(DataConfig(name=name, root=str(tmp_path)))
    if name in TORCHVISION_SETS:
        assert "data.download=true" in str(empty.value)


# one metadata file per torchvision set whose absence leaves the tree incomplete
METADATA = {"cifar10": "cifar-10-batches-py/data_batch_3", "cifar100": "cifar-100-python/meta",
            "svhn": "test_32x32.mat", "gtsrb": "gtsrb/GT-final_test.csv", "food101": "food-101/meta/test.json",
            "dtd": "dtd/dtd/labels/val1.txt", "flowers102": "flowers-102/setid.mat"}


@pytest.mark.parametrize("name", TORCHVISION_SETS)
def test_incomplete_torchvision_root_names_the_download_switch(name, tmp_path, no_md5):
    root = tmp_path / name
    FABRICATORS[name](root)
    (root / METADATA[name]).unlink()
    with pytest.raises(UsageError, match="missing or incomplete") as missing:
        load_splits(DataConfig(name=name, root=str(root)))
    assert "data.download=true" in str(missing.value) and DATASETS.get(name).layout in str(missing.value)


def test_cifar_keeps_torchvision_pixel_order(tmp_path, no_md5):
    make_cifar10(tmp_path)
    splits = load_splits(DataConfig(name="cifar10", root=str(tmp_path)))
    tv = torchvision.datasets.CIFAR10(str(tmp_path), train=False)
    assert splits.classes == tv.classes
    image, label = splits.test[3]
    tv_image, tv_label = tv[3]
    assert label == tv_label and np.array_equal(np.asarray(image), np.asarray(tv_image))


def test_svhn_maps_label_10_to_digit_zero(tmp_path, no_md5):
    make_svhn(tmp_path)
    splits = load_splits(DataConfig(name="svhn", root=str(tmp_path)))
    assert splits.classes == [str(d) for d in range(10)]
    assert sorted(set(splits.test.labels.tolist())) == list(range(10))
    assert splits.test.labels[0] == 0  # the first test digits were written as y = 10


def test_dtd_reads_partition_1(tmp_path):
    make_dtd(tmp_path)
    splits = load_splits(DataConfig(name="dtd", root=str(tmp_path)))
    assert splits.classes == ["banded", "blotchy", "braided"]
    assert len(splits.train) == 6  # partition 2 lists only 3 files per split


def test_gtsrb_classes_are_the_training_folders(tmp_path):
    make_gtsrb(tmp_path)
    splits = load_splits(DataConfig(name="gtsrb", root=str(tmp_path)))
    assert splits.classes == ["00000", "00001", "00002", "00003"]
    assert splits.test.labels.tolist() == [i % 4 for i in range(8)]  # ClassId column of GT-final_test.csv


def test_imagefolder_uses_its_val_folder(tmp_path):
    expected = make_imagefolder(tmp_path, with_val=True)
    splits = load_splits(DataConfig(name="imagefolder", root=str(tmp_path)))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (expected.train, expected.val, expected.test)
    assert all("/val/" in f for f in splits.val.files())


def test_imagefolder_rejects_a_class_that_train_lacks(tmp_path):
    make_imagefolder(tmp_path)
    (tmp_path / "test" / "zebra").mkdir()
    with pytest.raises(UsageError, match="zebra"):
        load_splits(DataConfig(name="imagefolder", root=str(tmp_path)))


@pytest.mark.parametrize("name", sorted(FGVC_COUNTS))
def test_fgvc_class_ids_map_by_sorted_id(name, tmp_path, shared_dir):
    make_fgvc(name, tmp_path, shared_dir, images="few")
    splits = load_splits(DataConfig(name=name, root=str(tmp_path)))
    train = json.loads((tmp_path / "train.json").read_text())
    ids = sorted({int(v) for v in train.values()})
    first_path, first_id = next(iter(train.items()))
    assert splits.train.labels[0] == ids.index(int(first_id))
    assert splits.train.files()[0].endswith(first_path)


def test_fgvc_split_dir_and_names(tmp_path, shared_dir):
    root, split_dir = tmp_path / "cub", tmp_path / "splits"
    make_fgvc("cub", root, shared_dir, images="few")
    split_dir.mkdir()
    for split in ("train", "val", "test"):
        (root / f"{split}.json").rename(split_dir / f"{split}.json")
    with pytest.raises(UsageError, match="train.json"):
        load_splits(DataConfig(name="cub", root=str(root), split_dir=str(tmp_path / "nowhere")))
    splits = load_splits(DataConfig(name="cub", root=str(root), split_dir=str(split_dir)))
    shipped = load_splits(DataConfig(name="cub", root=str(root)))  # no JSON in the root: VPT's, shipped with insvp
    assert shipped.train.files() == splits.train.files() and list(shipped.test.labels) == list(splits.test.labels)
    assert splits.classes[0] == "001.Black_footed_Albatross" and splits.classes[-1] == "200.Common_Yellowthroat"
    nabirds = tmp_path / "nabirds"
    make_fgvc("nabirds", nabirds, shared_dir, images="few")
    (nabirds / "classes.txt").write_text("0 Birds\n295 Black-bellied Whistling-Duck\n")
    names = load_splits(DataConfig(name="nabirds", root=str(nabirds))).classes
    assert names[0] == "Black-bellied Whistling-Duck" and len(names) == 555


def test_fgvc_rejects_a_malformed_split_file(tmp_path, shared_dir):
    make_fgvc("stanford_cars", tmp_path, shared_dir, images="few")
    (tmp_path / "val.json").write_text('["car_ims/000001.jpg"]')
    with pytest.raises(UsageError, match="must map image paths to class ids"):
        load_splits(DataConfig(name="stanford_cars", root=str(tmp_path)))


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(UsageError, match="unknown dataset 'cifar11'; valid: cifar10, cifar100, cub"):
        load_splits(DataConfig(name="cifar11"))


def test_root_may_be_a_path_with_a_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_imagefolder(Path(tmp_path) / "folder")
    assert len(load_splits(DataConfig(name="imagefolder", root="~/folder")).test) == 6


def test_a_failed_download_says_where_to_put_the_files(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(UsageError, match="downloading into .* failed .*place the files yourself: expected <root>"):
        load_splits(DataConfig(name="cifar10", root=str(tmp_path / "new"), download=True))
    with pytest.raises(UsageError, match="data.download=true needs data.root"):
        load_splits(DataConfig(name="cifar10", download=True))
