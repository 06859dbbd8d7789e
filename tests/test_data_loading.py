"""Transforms, class subsets, loaders and unreadable images, on the offline digits and fabricated folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
from fabricate import make_imagefolder
from PIL import Image
from torch.utils.data import DistributedSampler
from torchvision import transforms as T

from insvp_cli.common.errors import UsageError
from insvp_cli.config.schema import DataConfig
from insvp_cli.data.base import BadImageError
from insvp_cli.data.digits import TEST_FRACTION
from insvp_cli.data.loaders import build_loaders, pop_bad_images
from insvp_cli.data.splits import build_splits, load_splits
from insvp_cli.data.transforms import build_transforms

DATA_CFG = {"input_size": (3, 16, 16), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25),
            "interpolation": "bicubic", "crop_pct": 0.9}


def kinds(transform) -> list[type]:
    """The steps after the resize (on its uint8 tensor)."""
    return [type(t) for t in transform.finish.transforms]


# ---------------------------------------------------------------------------------------------------
# transforms


def test_crop_mode_is_resize_crop_flip_for_train_and_resize_center_crop_for_eval():
    train, evaluation = build_transforms(DataConfig(), {**DATA_CFG, "input_size": (3, 224, 224)}, flip=True)
    assert kinds(train) == [T.RandomCrop, T.RandomHorizontalFlip, T.ConvertImageDtype, T.Normalize]
    assert kinds(evaluation) == [T.CenterCrop, T.ConvertImageDtype, T.Normalize]
    assert train.size == 256 and evaluation.size == 256  # VPT / release: Resize(256)
    assert train.finish.transforms[0].size == (224, 224)
    assert train.interpolation == T.InterpolationMode.BICUBIC and train.resize_key == evaluation.resize_key
    image = Image.new("RGB", (300, 400))
    assert train(image).shape == evaluation(image).shape == (3, 224, 224)


@pytest.mark.parametrize("resize", ["crop", "direct"])
def test_the_two_stages_give_torchvisions_pil_pipeline_to_the_bit(resize):
    """Resize on the PIL image, then crop and flip on its uint8 tensor: the pixels of the usual PIL pipeline ending in
    ToTensor, with the same random draws, so a cached split trains exactly as its files."""
    data_cfg = {**DATA_CFG, "input_size": (3, 24, 24)}
    train, evaluation = build_transforms(DataConfig(resize=resize), data_cfg, flip=True)
    resize_step = T.Resize(evaluation.size, interpolation=T.InterpolationMode.BICUBIC)
    crops = ([T.CenterCrop(24)], [T.RandomCrop(24)]) if resize == "crop" else ([], [])
    tail = [T.ToTensor(), T.Normalize(DATA_CFG["mean"], DATA_CFG["std"])]
    usual_eval = T.Compose([resize_step, *crops[0], *tail])
    usual_train = T.Compose([resize_step, *crops[1], T.RandomHorizontalFlip(), *tail])
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 50, 3), dtype=np.uint8))
    assert torch.equal(evaluation(image), usual_eval(image))
    for seed in range(8):
        torch.manual_seed(seed)
        ours = train(image)
        torch.manual_seed(seed)
        assert torch.equal(ours, usual_train(image))


def test_no_flip_where_it_changes_the_label_and_none_without_augmentation():
    train, _ = build_transforms(DataConfig(), DATA_CFG, flip=False)
    assert T.RandomHorizontalFlip not in kinds(train) and T.RandomCrop in kinds(train)
    train, evaluation = build_transforms(DataConfig(augment=False), DATA_CFG, flip=True)
    assert kinds(train) == kinds(evaluation)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    assert torch.equal(train(image), evaluation(image))


def test_direct_resize_has_no_crop_and_image_size_overrides_the_backbone():
    train, evaluation = build_transforms(DataConfig(resize="direct", image_size=24), DATA_CFG, flip=True)
    assert kinds(evaluation) == [T.ConvertImageDtype, T.Normalize] and evaluation.size == (24, 24)
    assert kinds(train) == [T.RandomHorizontalFlip, T.ConvertImageDtype, T.Normalize]
    assert evaluation(Image.new("RGB", (50, 10))).shape == (3, 24, 24)  # straight to size, aspect ignored


def test_non_square_input_and_normalisation_with_the_backbone_mean_std():
    _, evaluation = build_transforms(DataConfig(), {**DATA_CFG, "input_size": (3, 16, 32)}, flip=True)
    out = evaluation(Image.new("RGB", (64, 64), (255, 0, 128)))
    assert out.shape == (3, 16, 32)
    expected = torch.tensor([(1 - 0.5) / 0.25, (0 - 0.5) / 0.25, (128 / 255 - 0.5) / 0.25])
    assert torch.allclose(out[:, 0, 0], expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# offline digits and class subsets


def test_mnist5k_is_real_mnist_split_by_class():
    splits = load_splits(DataConfig(name="mnist5k"))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3600, 400, 1000)
    assert np.bincount(splits.test.labels).tolist() == [int(500 * TEST_FRACTION)] * 10
    every = np.concatenate([splits.train.indices, splits.val.indices, splits.test.indices])
    assert sorted(every.tolist()) == list(range(5000))  # disjoint and complete
    image, _ = splits.train[0]
    assert image.mode == "RGB" and image.size == (28, 28)
    pixels = np.asarray(image)
    assert np.array_equal(pixels[..., 0], pixels[..., 2]) and pixels.max() > 200  # grayscale ink, 3 channels


def test_class_subset_is_remapped_and_holds_out_the_same_images():
    full = load_splits(DataConfig(name="digits"))
    upper = load_splits(DataConfig(name="digits", classes=[5, 6, 7, 8, 9]))
    assert upper.classes == ["5", "6", "7", "8", "9"]
    for ds in (upper.train, upper.val, upper.test):
        assert set(ds.labels.tolist()) == {0, 1, 2, 3, 4}
    # digit 7 (label 2 in the subset) is held out identically with or without the other classes
    assert np.array_equal(upper.test.indices[upper.test.labels == 2], full.test.indices[full.test.labels == 7])
    assert np.array_equal(upper.val.indices[upper.val.labels == 2], full.val.indices[full.val.labels == 7])
    swapped = load_splits(DataConfig(name="digits", classes=[9, 0]))
    kept = np.isin(full.test.labels, [9, 0])
    assert swapped.classes == ["9", "0"]
    assert np.array_equal(swapped.test.indices, full.test.indices[kept])
    assert swapped.test.labels.tolist() == [0 if y == 9 else 1 for y in full.test.labels[kept]]


@pytest.mark.parametrize("classes, message", [([3, 10], r"\[10\] out of range"), ([1, 1], "twice"),
                                              ([], "keeps nothing")])
def test_bad_class_subsets_are_usage_errors(classes, message):
    with pytest.raises(UsageError, match=message):
        load_splits(DataConfig(name="digits", classes=classes))


# ---------------------------------------------------------------------------------------------------
# loaders


def test_loaders_shuffle_train_only_with_a_seed_and_keep_every_sample():
    cfg = DataConfig(name="digits", classes=[0, 1, 2], batch_size=32, num_workers=0)
    splits = build_splits(cfg, DATA_CFG)

    def train_order(seed: int) -> list[int]:
        return torch.cat([y for _, y in build_loaders(splits, cfg, seed=seed).train]).tolist()

    assert train_order(0) == train_order(0) != train_order(1)
    assert sorted(train_order(0)) == sorted(splits.train.labels.tolist())  # drop_last is off
    loaders = build_loaders(splits, cfg, seed=0)
    assert loaders.train_sampler.num_replicas == 1  # one process: a group of one, shuffled per (seed, epoch)
    images, labels = next(iter(loaders.val))
    assert images.shape == (32, 3, 16, 16) and labels.dtype == torch.int64
    assert torch.cat([y for _, y in loaders.test]).tolist() == splits.test.labels.tolist()  # not shuffled
    assert not loaders.train.persistent_workers
    with_workers = build_loaders(splits, DataConfig(num_workers=2), pin_memory=True)
    assert with_workers.train.persistent_workers and with_workers.train.pin_memory


def test_distributed_training_uses_a_distributed_sampler(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        cfg = DataConfig(name="digits", classes=[0, 1], batch_size=64, num_workers=0)
        splits = build_splits(cfg, DATA_CFG)
        loaders = build_loaders(splits, cfg, distributed=True, seed=3)
        assert isinstance(loaders.train_sampler, DistributedSampler) and loaders.train.sampler is loaders.train_sampler
        loaders.train_sampler.set_epoch(1)
        assert sum(len(y) for _, y in loaders.train) == len(splits.train)
        assert not isinstance(loaders.val.sampler, DistributedSampler)  # every rank evaluates the whole split
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------
# unreadable images


@pytest.fixture
def corrupt_folder(tmp_path):
    """An image folder (with val/) whose train/cat/0.png is not an image; returns (config, the bad path)."""
    make_imagefolder(tmp_path, with_val=True)
    bad = tmp_path / "train" / "cat" / "0.png"
    bad.write_bytes(b"this is not a png")
    cfg = DataConfig(name="imagefolder", root=str(tmp_path), batch_size=4, num_workers=0, augment=False)
    return cfg, str(bad)


def test_an_unreadable_image_stops_the_loader_naming_the_file(corrupt_folder):
    cfg, bad = corrupt_folder
    splits = build_splits(cfg, DATA_CFG)
    with pytest.raises(BadImageError, match="data.on_bad_image=skip") as raised:
        for _ in build_loaders(splits, cfg).train:
            pass
    assert raised.value.path == bad and bad in str(raised.value)
    position = splits.train.files().index(bad)
    with pytest.raises(UsageError, match=f"unreadable image {bad}"):
        splits.train[position]


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_drops_and_reports_unreadable_images_per_epoch(corrupt_folder, workers):
    cfg, bad = corrupt_folder
    cfg = DataConfig(**{**cfg.__dict__, "on_bad_image": "skip", "num_workers": workers})
    splits = build_splits(cfg, DATA_CFG)
    loader = build_loaders(splits, cfg).train
    for _ in range(2):  # two epochs: the report is per epoch
        assert sum(len(y) for _, y in loader) == len(splits.train) - 1
        assert pop_bad_images(loader) == [bad]
    assert loader.pop_bad_images() == []


def test_a_batch_with_nothing_readable_is_not_yielded(tmp_path):
    make_imagefolder(tmp_path, per_class=1, test_per_class=1)
    for path in (tmp_path / "test").rglob("*.png"):
        path.write_bytes(b"")
    cfg = DataConfig(name="imagefolder", root=str(tmp_path), num_workers=0, on_bad_image="skip", batch_size=2)
    loaders = build_loaders(build_splits(cfg, DATA_CFG), cfg)
    assert list(loaders.test) == []
    assert len(pop_bad_images(loaders.test)) == 3
