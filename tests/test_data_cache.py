"""Small splits decoded once into uint8 tensors (``data.cache_gb``), workers scaled to the CPUs, and the evaluation
split into parts for the processes of a ``torchrun``."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console

from insvp_cli.config.schema import DataConfig
from insvp_cli.data.base import BadImageError
from insvp_cli.data.cache import CachedImages, cache_split, cache_splits
from insvp_cli.data.loaders import ImageLoader, build_loaders, shard
from insvp_cli.data.splits import build_splits
from insvp_cli.runtime.cpus import loader_workers

DATA_CFG = {"input_size": (3, 16, 16), "mean": (0.5, 0.4, 0.3), "std": (0.25, 0.2, 0.3), "interpolation": "bicubic"}
SIZES = [(37, 50), (20, 31), (64, 48), (25, 25)]  # (H, W): portrait, landscape, square


@pytest.fixture
def folder(tmp_path):
    """An imagefolder of distinct JPEGs and PNGs of several sizes, with its own val/."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 4), ("test", 6)):
        for i in range(count):
            height, width = SIZES[i % len(SIZES)]
            path = tmp_path / split / f"class{i % 2}" / f"{i}.{'jpg' if i % 3 else 'png'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return tmp_path


def _cfg(root, **kwargs) -> DataConfig:
    return DataConfig(**{"name": "imagefolder", "root": str(root), "batch_size": 4, "num_workers": 0, **kwargs})


def test_a_cached_split_gives_the_pixels_and_the_random_crops_of_its_files(folder):
    splits = build_splits(_cfg(folder), DATA_CFG)
    cached = cache_split(splits.train, workers=2, on_bad_image="error")
    assert isinstance(cached, CachedImages) and len(cached) == len(splits.train)
    # the resized images, packed: a 37x50 image resized to a shorter side of 18 is 18x24
    assert cached.nbytes == sum(3 * s for s in (18 * 24, 18 * 27, 24 * 18, 18 * 18)) * 3
    for i in range(len(cached)):
        torch.manual_seed(i)
        augmented = cached[i]
        torch.manual_seed(i)
        assert torch.equal(augmented[0], splits.train[i][0]) and augmented[1] == splits.train[i][1]
    evaluation = cached.with_transform(splits.test.transform)  # the same resize: served from the cache
    assert isinstance(evaluation, CachedImages) and torch.equal(evaluation[3][0], splits.test.transform(
        Image.open(splits.train.files()[3]).convert("RGB")))
    other = build_splits(_cfg(folder, image_size=12), DATA_CFG).test.transform  # another resize: from the files
    assert not isinstance(cached.with_transform(other), CachedImages)
    assert cached.select([2, 0]).files() == [splits.train.files()[2], splits.train.files()[0]]


def test_the_budget_decides_which_splits_are_cached_train_first(folder):
    splits = build_splits(_cfg(folder), DATA_CFG)
    console = Console(file=io.StringIO(), width=200)
    none = cache_splits(splits, _cfg(folder, cache_gb=0), console)
    assert none == splits and console.file.getvalue() == ""
    train_bytes = cache_split(splits.train, 0, "error").nbytes
    only_train = cache_splits(splits, _cfg(folder, cache_gb=train_bytes * 1.2 / 2**30), console)
    assert isinstance(only_train.train, CachedImages)
    assert not isinstance(only_train.val, CachedImages) and not isinstance(only_train.test, CachedImages)
    lines = console.file.getvalue().splitlines()
    assert lines == [f"cached train: 12 images, {train_bytes / 2**20:,.1f} MiB decoded and resized in "
                     f"{lines[0].rsplit(' in ', 1)[1]}"]
    every = cache_splits(splits, _cfg(folder), None)  # the default 4 GiB
    assert all(isinstance(getattr(every, name), CachedImages) for name in ("train", "val", "test"))


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_images_in_a_cached_split_are_reported_every_epoch_or_stop_the_caching(folder, workers):
    bad = folder / "train" / "class0" / "2.jpg"
    bad.write_bytes(b"not a jpeg")
    cfg = _cfg(folder, on_bad_image="skip", num_workers=workers)
    splits = cache_splits(build_splits(cfg, DATA_CFG), cfg)
    loader = build_loaders(splits, cfg).train
    for _ in range(2):
        assert sum(len(y) for _, y in loader) == 11 and loader.pop_bad_images() == [str(bad)]
    with pytest.raises(BadImageError, match=f"unreadable image {bad}"):
        cache_splits(build_splits(_cfg(folder), DATA_CFG), _cfg(folder))


def test_workers_follow_the_cpus_of_each_process(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert loader_workers(None) == 15  # one CPU left to the process that trains
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four processes of a torchrun on this node
    assert loader_workers(None) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert loader_workers(None) == 0
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(128)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert loader_workers(None) == 16  # at most
    assert loader_workers(5) == 5
    assert ImageLoader([], num_workers=None).num_workers == 16


def test_the_parts_of_a_split_hold_every_sample_once_in_order(folder):
    test = build_splits(_cfg(folder), DATA_CFG).test  # 6 images
    for replicas in (1, 2, 4, 8):
        parts = [shard(test, rank, replicas) for rank in range(replicas)]
        assert np.concatenate([p.indices for p in parts]).tolist() == test.indices.tolist()
        assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
