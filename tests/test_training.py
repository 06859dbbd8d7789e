"""The engine end to end on real offline data (scikit-learn's digits) and a tiny ViT."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import insvp_cli
from insvp_cli.cli import app
from insvp_cli.common.errors import RunInterrupted, TrainingDiverged
from insvp_cli.experiments.reproduce.runner import plan_table, run_plan
from insvp_cli.experiments.reproduce.tables import Cell, RunSpec, TableDef
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.checkpoint import CHECKPOINT_FORMAT, Checkpoint
from insvp_cli.train.loop import fit
from tests.conftest import one_line_error, tiny_run

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = {"config.yaml", "metrics.jsonl", "best.pt", "last.pt", "resume.pt", "summary.json", ".lock"}
runner = CliRunner()


def test_fit_writes_the_promised_files(tmp_path):
    cfg = resolve_config(None, tiny_run())
    summary = fit(cfg, tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == RUN_FILES
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) and 0 <= r["val_acc"] <= 100 for r in rows)
    assert summary == json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_epoch"] in (1, 2) and 0 <= summary["test_acc"] <= 100
    best = torch.load(tmp_path / "run" / "best.pt", map_location="cpu", weights_only=True)
    assert best["format_version"] == CHECKPOINT_FORMAT and best["classes_named"] is True
    assert best["method"] == "insvp" and best["classes"] == ["0", "1", "2"]
    assert best["metrics"]["test_acc"] == summary["test_acc"]
    # trainable weights only: no backbone tensor, and exactly the trainable parameter count
    assert not any(k.startswith("backbone.") for k in best["state_dict"])
    assert sum(v.numel() for v in best["state_dict"].values()) == summary["trainable_params"]
    assert Checkpoint.read(tmp_path / "run" / "best.pt").config == cfg  # read back as it was, never re-resolved


def test_same_seed_same_numbers(tmp_path):
    a = fit(resolve_config(None, tiny_run("linear", 1)), tmp_path / "a")
    b = fit(resolve_config(None, tiny_run("linear", 1)), tmp_path / "b")
    assert a == b


def test_evaluate_reproduces_the_logged_accuracy_and_api(tmp_path):
    summary = fit(resolve_config(None, tiny_run(epochs=1)), tmp_path / "run")
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run" / "best.pt"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["acc"] == out["logged_acc"] == summary["test_acc"]
    model = insvp_cli.load_model(tmp_path / "run" / "best.pt")
    assert not model.training
    transform = insvp_cli.load_transform(tmp_path / "run" / "best.pt")
    from PIL import Image

    x = transform(Image.new("RGB", (8, 8), (255, 0, 0))).unsqueeze(0)
    assert x.shape == (1, 3, 32, 32) and model(x).shape == (1, 3)


def test_diverged_training_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import insvp_cli.train.loop as training

    epochs = {"n": 0}
    real_epoch, real_criterion = training.train_one_epoch, training.build_criterion

    def counting_epoch(*args, **kwargs):
        epochs["n"] += 1
        return real_epoch(*args, **kwargs)

    def poisoned_criterion(cfg, mixup):
        inner = real_criterion(cfg, mixup)
        return lambda logits, targets: inner(logits, targets) * (float("nan") if epochs["n"] >= 2 else 1.0)

    monkeypatch.setattr(training, "train_one_epoch", counting_epoch)
    monkeypatch.setattr(training, "build_criterion", poisoned_criterion)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 1 of the epoch; .* keeps epoch 1"):
        fit(resolve_config(None, tiny_run(epochs=3)), tmp_path / "run")
    last = Checkpoint.read(tmp_path / "run" / "last.pt")
    assert last.epoch == 1 and all(torch.isfinite(v).all() for v in last.state_dict.values())
    assert Checkpoint.read(tmp_path / "run" / "best.pt").epoch == 1


def _without_timings(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "seconds" not in k and "per_s" not in k} for r in rows]


def test_interrupt_then_resume_equals_uninterrupted(tmp_path):
    cfg = resolve_config(None, tiny_run("insvp", 3))
    full = fit(cfg, tmp_path / "full")

    def interrupt(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        fit(cfg, tmp_path / "interrupted", on_epoch=interrupt)
    assert not (tmp_path / "interrupted" / "summary.json").exists()
    assert fit(cfg, tmp_path / "interrupted") == full  # RNG, optimizer, scheduler and best-so-far all restored
    assert _without_timings(tmp_path / "interrupted") == _without_timings(tmp_path / "full")


def test_torchrun_two_processes_match_one(tmp_path):
    """Data-parallel training for real on the CPU: two gloo processes launched as `insvp reproduce` launches a run
    on two GPUs (`torchrun --standalone`, the global batch split over the processes), against one process."""
    common = tiny_run("insvp", 2, "train.mixup=0", "train.cutmix=0", "data.augment=false", "method.dropout=0",
                      "data.classes=[0, 1, 2, 3]")
    one = fit(resolve_config(None, common), tmp_path / "one")
    spec = RunSpec("digits/insvp", None, tuple(o for o in common if o != "train.device=cpu"))
    table = TableDef("torchrun-test", "torchrun", "method", ("InsVP",), ("d",), (Cell("InsVP", "d", "insvp", spec),))
    plan = plan_table(table, tmp_path, tmp_path / "runs", ngpus=2)
    assert plan.runs[0].launcher == "torchrun" and plan.runs[0].cfg.data.batch_size == 16  # 32 over 2 processes
    outcome = run_plan(plan, Console(file=io.StringIO()))
    assert outcome.trained == ["digits/insvp"] and not outcome.failed, outcome.failed
    two_dir = tmp_path / "runs" / "digits" / "insvp"
    two = json.loads((two_dir / "summary.json").read_text())
    assert one["best_epoch"] == two["best_epoch"]
    for key in ("val_acc", "test_acc"):
        assert one[key] == pytest.approx(two[key], abs=0.5), key
    for x, y in zip(_without_timings(tmp_path / "one"), _without_timings(two_dir), strict=True):
        assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)
    assert plan_table(table, tmp_path, tmp_path / "runs", ngpus=2).runs[0].state == "done"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--recipe", "recipes/absent.yaml"], "recipe recipes/absent.yaml does not exist"),
        (["train", "--set", "train.lrr=1"], "unknown key train.lrr"),
        (["train", "--set", "train.epochs=x"], "train.epochs: 'x' is not an integer"),
        (["evaluate", "absent.pt"], "checkpoint absent.pt does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, message):
    code, output = cli(*args)
    one_line_error(output, code, 2, message)


def test_corrupt_and_foreign_checkpoints(tmp_path, cli):
    fit(resolve_config(None, tiny_run("linear", 1)), tmp_path / "run")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((tmp_path / "run" / "best.pt").read_bytes()[:200])
    code, output = cli("evaluate", corrupt)
    one_line_error(output, code, 2, "is not a readable insvp checkpoint")
    # the same checkpoint on a backbone of another width
    code, output = cli("evaluate", tmp_path / "run" / "best.pt", "--set",
                       "backbone.kwargs={patch_size: 8, embed_dim: 96, depth: 2, num_heads: 2}")
    one_line_error(output, code, 2, "another backbone")


def test_vit_b_checkpoint_holds_trainable_weights_only(tmp_path):
    from insvp_cli.methods.build import build_model

    cfg = resolve_config("recipes/cub.yaml", ["backbone.weights=none"])
    model = build_model(cfg, 200)
    Checkpoint.of(model, cfg, [str(i) for i in range(200)], {}, 0).save(tmp_path / "best.pt")
    assert (tmp_path / "best.pt").stat().st_size < 3 * 2**20  # a few MB, not the 330 MB backbone
    assert [p.name for p in tmp_path.iterdir()] == ["best.pt"]  # no temp file left behind


def test_train_compile_trains_through_torch_compile_and_saves_the_plain_model(tmp_path, monkeypatch):
    compiled = []

    def fake_compile(module):  # torch.compile's contract without the compiler: a module sharing the parameters
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    fit(resolve_config(None, tiny_run("vpt", 1, "train.compile=true")), tmp_path / "run")
    assert len(compiled) == 1
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert not any("_orig_mod" in key for key in best["state_dict"])
