"""`insvp compare` and the offline quickstart (shortened to one epoch)."""

from __future__ import annotations

import csv

from safetensors.torch import load_file
from typer.testing import CliRunner

from insvp_cli.backbone.weights import resolve_weights_path
from insvp_cli.cli import app
from insvp_cli.experiments.quickstart import ASSET, pretrain_backbone, quickstart
from tests.conftest import tiny_run

runner = CliRunner()


def test_compare_trains_each_method_and_writes_tables(tmp_path):
    sets = [x for s in tiny_run("linear", 1) if not s.startswith("method.") for x in ("--set", s)]
    args = ["compare", "--methods", "linear,vpt", "--out", str(tmp_path), *sets]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [r["method"] for r in rows] == ["linear", "vpt"]
    assert int(rows[0]["extra params"]) == 0 and int(rows[1]["extra params"]) > 0
    assert all(0 <= float(r["test acc"]) <= 100 and float(r["train images/s"]) > 0 for r in rows)
    assert "| linear |" in (tmp_path / "comparison.md").read_text()
    # a second call reuses the finished runs: nothing is trained again
    mtime = (tmp_path / "vpt" / "best.pt").stat().st_mtime_ns
    assert runner.invoke(app, args).exit_code == 0
    assert (tmp_path / "vpt" / "best.pt").stat().st_mtime_ns == mtime


def test_compare_rejects_unknown_methods(tmp_path):
    result = runner.invoke(app, ["compare", "--methods", "linear,nope", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "unknown method 'nope'" in str(result.exception)


def test_quickstart_uses_the_shipped_backbone(tmp_path):
    results = quickstart(tmp_path, overrides=["train.epochs=1", "data.classes=[5, 6]"])
    assert [r.method for r in results] == ["insvp", "linear"]
    assert all(r.summary["num_classes"] == 2 and r.summary["dataset"] == "mnist5k" for r in results)
    assert results[1].summary["trainable_params"] == 96 * 2 + 2  # the linear probe's head alone
    assert (tmp_path / "comparison.md").is_file()


def test_pretraining_reproduces_the_asset_layout(tmp_path):
    path = pretrain_backbone(tmp_path, ["train.epochs=1", "data.classes=[0, 1]"])
    ours, shipped = load_file(str(path)), load_file(str(resolve_weights_path(ASSET)))
    assert ours.keys() == shipped.keys()
    assert all(ours[k].shape == shipped[k].shape for k in ours)
