"""`insvp data check` and `insvp data list` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fabricate import make_fgvc, make_imagefolder
from PIL import Image
from typer.testing import CliRunner

from insvp_cli.cli import app
from insvp_cli.common.errors import UsageError
from insvp_cli.data.registry import DATASETS
from tests.conftest import one_line_error

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # as in conftest.py (module-scoped fixture here)


@pytest.fixture(scope="module")
def cub_tree(tmp_path_factory):
    """A full CUB tree: VPT's three split files and a tiny JPEG at each of the 11,788 listed paths."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: these tests read the shared fixtures beside the checkout (CI has them)")
    root = tmp_path_factory.mktemp("cub")
    make_fgvc("cub", root, SHARED)
    return root


def test_cub_acceptance(cub_tree):
    result = runner.invoke(app, ["data", "check", "cub", "--root", str(cub_tree)])
    assert result.exit_code == 0, result.output
    for number in ("5394", "600", "5794", "200 classes", "200/200"):
        assert number in result.output
    assert "ok: cub is ready" in result.output

    victim = cub_tree / "images" / json.loads((cub_tree / "val.json").read_text()).popitem()[0]
    victim_bytes = victim.read_bytes()
    victim.unlink()
    try:
        result = runner.invoke(app, ["data", "check", "cub", "--root", str(cub_tree)])
    finally:
        victim.write_bytes(victim_bytes)
    assert result.exit_code == 1, result.output
    assert str(victim) in result.output
    assert "val: 1 files missing" in result.output and "not ready" in result.output


def test_a_split_dir_elsewhere(cub_tree, tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.json").write_text((cub_tree / f"{split}.json").read_text())
    result = runner.invoke(app, ["data", "check", "cub", "--root", str(cub_tree), "--split-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name, sizes", [("mnist5k", ("3600", "400", "1000")), ("digits", ("359",))])
def test_offline_digit_sets(name, sizes):
    result = runner.invoke(app, ["data", "check", name])
    assert result.exit_code == 0, result.output
    assert f"{name}: 10 classes" in result.output and all(s in result.output for s in sizes)


def test_overrides_reach_the_data_config():
    result = runner.invoke(app, ["data", "check", "mnist5k", "--set", "data.classes=[5, 6, 7, 8, 9]",
                                 "--set", "data.val_fraction=0.2"])
    assert result.exit_code == 0, result.output
    assert "mnist5k: 5 classes" in result.output and "1600" in result.output and "400" in result.output


def test_unreadable_images_are_listed_and_fail_the_check(tmp_path):
    make_imagefolder(tmp_path)
    bad = tmp_path / "test" / "owl" / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    result = runner.invoke(app, ["data", "check", "imagefolder", "--root", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "test: 1 files unreadable" in result.output and str(bad) in result.output


def test_full_decoding_finds_a_truncated_image(tmp_path):
    make_imagefolder(tmp_path)
    victim = tmp_path / "train" / "dog" / "truncated.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(victim, quality=95)
    victim.write_bytes(victim.read_bytes()[:1500])  # cut into the scan data: the JPEG header still parses
    assert runner.invoke(app, ["data", "check", "imagefolder", "--root", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["data", "check", "imagefolder", "--root", str(tmp_path), "--full"])
    assert result.exit_code == 1 and str(victim) in result.output and "truncated" in result.output


def test_usage_errors_raise_for_the_entry_point_to_turn_into_exit_2(tmp_path):
    result = runner.invoke(app, ["data", "check", "cub", "--root", str(tmp_path / "nowhere")])
    assert isinstance(result.exception, UsageError) and "is not a folder" in str(result.exception)


def test_data_list_names_every_dataset():
    result = runner.invoke(app, ["data", "list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in DATASETS.names())


def test_exit_codes_of_the_entry_point(cli):
    """0 when ready, 2 for a usage error (exit 1 for a tree that is not ready: tests/test_cli.py, installed script)."""
    code, output = cli("data", "check", "digits")
    assert code == 0 and "digits: 10 classes" in output, output
    code, output = cli("data", "check", "cifar11")
    one_line_error(output, code, 2, "error: unknown dataset 'cifar11'; valid: cifar10, cifar100")
