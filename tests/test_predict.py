"""``insvp predict`` and ``insvp_cli.predict``: new images through a trained checkpoint."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import insvp_cli
from insvp_cli.cli import app
from insvp_cli.common.errors import UsageError
from insvp_cli.use.predict import InputFiles
from tests.conftest import REPO, insvp

runner = CliRunner()


def test_predict_matches_evaluate_and_names_the_bad_files(digit_run, tmp_path):
    """The acceptance run: a folder of digits plus a truncated PNG and a text file, through the installed script."""
    out = tmp_path / "preds.csv"
    proc = insvp("predict", str(digit_run.checkpoint), str(digit_run.root / "test"), "--out", str(out))
    assert proc.returncode == 1, proc.stderr  # some files were skipped
    assert "Traceback" not in proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if line.startswith("skipped ")]
    assert [line.split(":")[0] for line in skipped] == [
        f"skipped {digit_run.root / 'test' / 'broken.png'}", f"skipped {digit_run.root / 'test' / 'notes.txt'}"]
    assert "truncated" in skipped[0] and "cannot identify image file" in skipped[1]
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["path"]) for r in rows] == digit_run.test_images  # one row per image, sorted walk order
    assert list(rows[0]) == ["path", *(f"{n}_{i}" for i in range(1, 6) for n in ("class", "probability"))]
    assert all(abs(sum(float(r[f"probability_{i}"]) for i in range(1, 6)) - 1) < 1e-5 for r in rows)
    acc = 100.0 * sum(r["class_1"] == Path(r["path"]).parent.name for r in rows) / len(rows)
    evaluated = runner.invoke(app, ["evaluate", str(digit_run.checkpoint), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.output)
    assert result["images"] == len(rows) and acc == result["acc"]
    assert not list(tmp_path.glob(".*"))  # no temp file left beside the output


def test_api_rows_are_the_models_softmax(digit_run):
    images = digit_run.test_images[:7]
    result = insvp_cli.predict(digit_run.checkpoint, images, top_k=2, batch_size=3)
    assert result.images == 7 and not result.skipped and result.top_k == 2
    assert [r.path for r in result.rows] == [str(p) for p in images]
    model, transform = insvp_cli.load_model(digit_run.checkpoint), insvp_cli.load_transform(digit_run.checkpoint)
    from PIL import Image

    with torch.no_grad():
        x = torch.stack([transform(Image.open(p).convert("RGB")) for p in images])
        probabilities = model(x).softmax(dim=1)
    classes = sorted(p.name for p in (digit_run.root / "train").iterdir())
    for row, p in zip(result.rows, probabilities, strict=True):
        top = p.topk(2)
        assert row.classes == [classes[i] for i in top.indices] and len(row.probabilities) == 2
        assert torch.allclose(torch.tensor(row.probabilities), top.values, atol=1e-6)


def test_workers_give_the_same_rows_and_report_bad_files(digit_run):
    test = digit_run.root / "test"
    inline = insvp_cli.predict(digit_run.checkpoint, [test], batch_size=8, workers=0)
    forked = insvp_cli.predict(digit_run.checkpoint, [test], batch_size=8, workers=2)
    assert [(r.path, r.classes) for r in forked.rows] == [(r.path, r.classes) for r in inline.rows]
    assert sorted(b.path for b in forked.skipped) == sorted(b.path for b in inline.skipped) == [
        str(test / "broken.png"), str(test / "notes.txt")]


def test_jsonl_output_and_top_k_capped_at_the_classes(digit_run, tmp_path):
    out = tmp_path / "preds.jsonl"
    result = insvp_cli.predict(digit_run.checkpoint, f"{digit_run.root}/test/5/*-0[0-3].png", out=out, top_k=50)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and result.rows == [] and result.out == out
    assert all(len(r["classes"]) == len(r["probabilities"]) == 5 for r in rows)  # 5 classes, not 50


def test_output_is_atomic_when_the_run_fails(digit_run, tmp_path, monkeypatch):
    import insvp_cli.runs.trained as trained

    real_restore = trained.build_trained_model

    def restore_failing_at_batch_2(*args, **kwargs):
        model = real_restore(*args, **kwargs)
        forward, calls = model.forward, []

        def failing(x):
            calls.append(len(x))
            if len(calls) == 2:
                raise RuntimeError("boom")
            return forward(x)

        model.forward = failing
        return model

    out = tmp_path / "preds.csv"
    out.write_text("previous\n")
    monkeypatch.setattr(trained, "build_trained_model", restore_failing_at_batch_2)
    with pytest.raises(RuntimeError, match="boom"):
        insvp_cli.predict(digit_run.checkpoint, [digit_run.root / "test"], out=out, batch_size=4)
    assert out.read_text() == "previous\n"  # the earlier file is untouched, the half-written one is gone
    assert [p.name for p in tmp_path.iterdir()] == ["preds.csv"]


def test_input_files_walk_recursively_in_order(tmp_path):
    for name in ("b/2.png", "b/1.png", "a.png", "c/.hidden.png", ".git/x.png", "b/sub/0.png", "ü.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "c" / "preds.csv").write_text("rows of an earlier run")
    files = InputFiles.find([tmp_path, str(tmp_path / "a.png"), f"{tmp_path}/b/*.png"],
                            exclude=tmp_path / "c" / "preds.csv")
    rel = [str(Path(p).relative_to(tmp_path)) for p in files]
    assert rel == ["a.png", "b/1.png", "b/2.png", "b/sub/0.png", "ü.png", "a.png", "b/1.png", "b/2.png"]
    assert len(files) == 8 and files[4] == str(tmp_path / "ü.png") and files[-1] == str(tmp_path / "b" / "2.png")
    assert not files.unreadable
    with pytest.raises(IndexError):
        files[8]


@pytest.mark.parametrize(("inputs", "message"), [
    (["missing.png"], "input missing.png does not exist"),
    (["nothing-*.png"], "matches no file"),
])
def test_input_errors(tmp_path, monkeypatch, inputs, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=message):
        InputFiles.find(inputs)


def test_an_empty_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no files found"):
        InputFiles.find([tmp_path])


def test_short_input_prints_a_table_and_exits_0(digit_run, monkeypatch):
    monkeypatch.chdir(digit_run.root)  # short relative paths fit the table's column
    images = [str(p.relative_to(digit_run.root)) for p in digit_run.test_images[:3]]
    result = runner.invoke(app, ["predict", str(digit_run.checkpoint), *images, "--top-k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "probability" in lines[1] and "next" in lines[1]
    assert [line.split()[1] for line in lines[3:6]] == images  # one row per image, in order


def test_long_input_without_out_streams_csv_to_stdout(digit_run, monkeypatch):
    import insvp_cli.cli.predict as cli_predict

    monkeypatch.setattr(cli_predict, "SHORT_INPUT", 2)
    images = [str(p) for p in digit_run.test_images[:5]]
    result = runner.invoke(app, ["predict", str(digit_run.checkpoint), *images, "-k", "1"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["path", "class_1", "probability_1"] and [r[0] for r in rows[1:]] == images


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "preds.txt"], "--out preds.txt: its suffix '.txt'; the formats written are .csv or .jsonl"),
    (["--top-k", "0"], "Invalid value for '--top-k'"),
    (["--device", "gpu"], "--device: 'gpu' is not a device"),
    (["--batch-size", "0"], "Invalid value for '--batch-size'"),
])
def test_usage_errors_exit_2_in_one_line(digit_run, cli, args, message):
    code, err = cli("predict", str(digit_run.checkpoint), str(digit_run.test_images[0]), *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {message}"), err


def test_installed_script_exits_2_on_a_missing_input(tmp_path, digit_run):
    proc = insvp("predict", str(digit_run.checkpoint), str(tmp_path / "nope"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: input {tmp_path / 'nope'} does not exist (give image files, folders or " \
                                  "quoted glob patterns)"


def test_import_insvp_cli_does_not_import_torch():
    code = "import sys, insvp_cli; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    from insvp_cli.use.predict import predict

    assert insvp_cli.predict is predict and "predict" in dir(insvp_cli)


def test_an_unlistable_folder_is_reported_not_fatal(tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir()
    (tmp_path / "a.png").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files = InputFiles.find([tmp_path])
    assert list(files) == [str(tmp_path / "a.png")]
    assert [(b.path, b.reason) for b in files.unreadable] == [(str(tmp_path / "locked"),
                                                               "PermissionError: Permission denied")]
