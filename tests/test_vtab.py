"""VTAB-1k tasks: both protocols, the direct resize, the errors that name the missing path, the 19 recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fabricate import VTAB_SIZES, make_vtab

from insvp_cli.common.errors import UsageError
from insvp_cli.config.schema import DataConfig
from insvp_cli.data.splits import build_splits, load_splits
from insvp_cli.data.vtab import VTAB_GROUPS, VTAB_TASKS
from insvp_cli.resolve.layers import resolve_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "vtab"
TINY = {"input_size": (3, 16, 16), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "interpolation": "bilinear"}


def vtab(root: Path, protocol: str = "tune", **kwargs) -> DataConfig:
    return DataConfig(name="vtab", root=str(root), vtab_protocol=protocol, num_workers=0, **kwargs)


def test_protocols_pick_the_list_files(tmp_path):
    make_vtab(tmp_path / "dtd", classes=3)
    tune, final = load_splits(vtab(tmp_path / "dtd")), load_splits(vtab(tmp_path / "dtd", "final"))
    assert (len(tune.train), len(tune.val), len(tune.test)) == (6, 3, 6)
    assert (len(final.train), len(final.val), len(final.test)) == (9, 3, 6)
    assert tune.classes == final.classes == ["0", "1", "2"]
    # tune never trains on the validation images; final trains on train800val200, which holds val200
    assert not set(tune.train.files()) & set(tune.val.files())
    assert set(final.val.files()) <= set(final.train.files())
    assert final.test.files() == tune.test.files()
    assert final.train.files()[0].endswith("dtd/images/train/000000.jpg")
    assert sorted(final.train.labels.tolist()) == sorted([c for c in range(3) for _ in range(3)])


def test_direct_resize_without_augmentation(tmp_path):
    make_vtab(tmp_path / "kitti")
    splits = build_splits(vtab(tmp_path / "kitti", resize="direct", augment=False), TINY)
    image, _ = splits.train[0]
    assert image.shape == (3, 16, 16) and torch.equal(image, splits.train[0][0])  # no random crop or flip
    # training uses the evaluation transform: a resize of both sides, no crop
    assert repr(splits.train.transform) == repr(splits.test.transform)
    assert splits.train.transform.size == (16, 16) and "Crop" not in repr(splits.train.transform)


def test_labels_map_by_sorted_value(tmp_path):
    root = tmp_path / "svhn"
    make_vtab(root)
    for name in ("train800", "val200", "test"):  # labels 0, 1, 2 -> 3, 7, 9: contiguous again
        text = (root / f"{name}.txt").read_text()
        (root / f"{name}.txt").write_text(text.replace(" 2\n", " 9\n").replace(" 1\n", " 7\n").replace(" 0\n", " 3\n"))
    splits = load_splits(vtab(root))
    assert splits.classes == ["3", "7", "9"] and set(splits.train.labels.tolist()) == {0, 1, 2}


def test_missing_task_folder_names_the_path(tmp_path):
    with pytest.raises(UsageError, match="task folder .*cifar.* is not a folder") as missing:
        load_splits(vtab(tmp_path / "cifar"))
    assert "train800val200.txt" in str(missing.value)


@pytest.mark.parametrize(("protocol", "missing"), [("tune", "train800"), ("tune", "test"), ("final", "train800val200"),
                                                   ("final", "val200")])
def test_missing_list_file_names_the_path(tmp_path, protocol, missing):
    make_vtab(tmp_path / "dmlab")
    (tmp_path / "dmlab" / f"{missing}.txt").unlink()
    with pytest.raises(UsageError, match=f"list file {tmp_path / 'dmlab' / missing}.txt not found"):
        load_splits(vtab(tmp_path / "dmlab", protocol))


def test_malformed_line_names_the_file_and_line(tmp_path):
    make_vtab(tmp_path / "eurosat")
    with (tmp_path / "eurosat" / "val200.txt").open("a") as f:
        f.write("images/train/999999.jpg cat\n")
    with pytest.raises(UsageError, match=r"val200.txt:4: expected '<image path> <integer label>'"):
        load_splits(vtab(tmp_path / "eurosat"))


def test_the_19_tasks_and_their_recipes():
    assert len(VTAB_TASKS) == len(set(VTAB_TASKS)) == 19
    assert {k: len(v) for k, v in VTAB_GROUPS.items()} == {"Natural": 7, "Specialized": 4, "Structured": 8}
    assert sorted(p.stem for p in RECIPES.glob("*.yaml")) == sorted(VTAB_TASKS)
    for task in VTAB_TASKS:
        cfg = resolve_config(RECIPES / f"{task}.yaml")
        assert cfg.data.name == "vtab" and cfg.data.root == f"data/vtab-1k/{task}"
        assert (cfg.data.vtab_protocol, cfg.data.resize, cfg.data.augment) == ("final", "direct", False)
        assert cfg.train.mixup == cfg.train.cutmix == 0.0 and cfg.method.prompt_len == 9
        assert cfg.train.eval_every == cfg.train.epochs == 100  # final protocol: test at the last epoch


def test_fabricated_sizes_match_the_tune_protocol(tmp_path):
    expected = make_vtab(tmp_path / "clevr_count", classes=2)
    assert (expected.train, expected.val, expected.test) == tuple(2 * VTAB_SIZES[k] for k in VTAB_SIZES)
