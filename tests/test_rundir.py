"""Run folders keep what users put in them: locks, --out checks, resumes that apply or refuse, whole metric rows."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import insvp_cli.experiments.queue as queue
import insvp_cli.runs.checkpoint as checkpoint_files
import insvp_cli.train.loop as training
from insvp_cli.common.atomic import atomic_write_text
from insvp_cli.common.errors import ConfigError, RunFinished, RunInterrupted, TrainingDiverged, UsageError
from insvp_cli.methods.build import build_model
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.checkpoint import CHECKPOINT_KEYS, RESUME_FORMAT, Checkpoint
from insvp_cli.runs.folder import RunFolder
from insvp_cli.runs.lock import RunLock
from insvp_cli.train.loop import fit
from tests.conftest import one_line_error, tiny_run


def rows(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """A finished 2-epoch linear-probe run on digits (copy it before changing it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    fit(resolve_config(None, tiny_run("linear", 2)), run)
    return run


@pytest.fixture
def finished(two_epochs, tmp_path):
    return shutil.copytree(two_epochs, tmp_path / "run")


def test_out_with_other_files_is_refused_and_left_untouched(tmp_path, cli):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "best.pt").write_bytes(b"my own model")
    (out / "metrics.jsonl").write_text("my own notes\n")
    code, output = cli("train", *[x for s in tiny_run("linear", 1) for x in ("--set", s)], "--out", out)
    one_line_error(output, code, 2, "holds files that are not an insvp run (best.pt, metrics.jsonl)")
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "metrics.jsonl"]
    assert (out / "best.pt").read_bytes() == b"my own model"


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_out_that_cannot_be_a_folder_is_one_line(tmp_path, cli, where):
    target = tmp_path / "file"
    target.write_text("x")
    out = target if where == "a file" else target / "run"
    code, output = cli("train", "--set", "train.epochs=1", "--out", out)
    one_line_error(output, code, 2, f"--out {out}")
    assert target.read_text() == "x"


def test_a_start_that_fails_leaves_no_folder(tmp_path):
    with pytest.raises(UsageError, match="not a multiple of"):
        fit(resolve_config(None, tiny_run("linear", 1, "backbone.img_size=36")), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    with RunLock(tmp_path / "run"), pytest.raises(UsageError, match=r"is in use: process \d+ on .* since"), \
            RunLock(tmp_path / "run"):
        pass
    with RunLock(tmp_path / "run"):  # released: free again
        pass


@pytest.mark.parametrize("change", ["method.name=vpt", "data.classes=[0, 1]", "data.batch_size=8",
                                    "backbone.kwargs={patch_size: 8, embed_dim: 96, depth: 2, num_heads: 2}"])
def test_resume_refuses_changes_of_the_model_or_data_before_writing(finished, cli, change):
    before = {p.name: p.read_bytes() for p in finished.iterdir()}
    code, output = cli("train", "--resume", finished, "--set", change, "--set", "train.epochs=3")
    one_line_error(output, code, 2, "cannot change in a resumed run", change.split("=")[0])
    assert {p.name: p.read_bytes() for p in finished.iterdir()} == before


def test_fit_refuses_a_folder_of_another_experiment(two_epochs, tmp_path):
    """compare, reproduce and sweep continue their folders through fit: it refuses another method or data too."""
    run = shutil.copytree(two_epochs, tmp_path / "run")
    (run / "summary.json").unlink()  # an unfinished run, as a compare that was interrupted leaves it
    with pytest.raises(UsageError, match="method.name cannot change in a resumed run"):
        fit(resolve_config(None, tiny_run("vpt", 2)), run)


def test_a_finished_run_is_refused_holding_its_lock_and_the_queue_reads_its_summary(finished, monkeypatch):
    """Another worker may finish a run between the queue's look at its folder and fit taking the lock: fit looks
    again holding it, and the run is neither trained nor tested a second time."""
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in finished.iterdir() if p.is_file()}
    cfg = RunFolder(finished).read_config()
    with pytest.raises(RunFinished, match="finished all 2 epochs"):
        fit(cfg, finished)
    monkeypatch.setattr(queue, "status", lambda run: queue.Placement("resume"))  # what it saw a moment before
    assert queue.train(queue.QueuedRun(cfg, finished)) == json.loads(files["summary.json"][0])
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in finished.iterdir() if p.is_file()} == files


def test_resume_of_a_finished_run_needs_more_epochs(finished):
    with pytest.raises(UsageError, match="finished all 2 epochs"):
        RunFolder(finished).resume_config()
    fit(RunFolder(finished).resume_config(["train.epochs=3"]), finished)
    assert [r["epoch"] for r in rows(finished)] == [1, 2, 3]
    assert rows(finished)[-1]["resumed_with"] == {"train.epochs": 3}


def test_resume_applies_a_new_learning_rate_and_records_it(two_epochs, tmp_path):
    same, halved = (shutil.copytree(two_epochs, tmp_path / name) for name in ("same", "halved"))
    fit(RunFolder(same).resume_config(["train.epochs=4"]), same)
    fit(RunFolder(halved).resume_config(["train.epochs=4", "train.lr=0.0025"]), halved)
    # epoch 3 of 4 ends mid-cosine: the learning rate there is half of the unchanged run's (up to the floor)
    assert rows(halved)[2]["lr"] == pytest.approx(rows(same)[2]["lr"] / 2, rel=5e-3)
    assert rows(halved)[2]["resumed_with"] == {"train.epochs": 4, "train.lr": 0.0025}
    assert RunFolder(halved).resume_config(["train.epochs=5"]).train.lr == 0.0025  # config.yaml records it


@pytest.mark.parametrize(("override", "message"), [
    ("train.grad_clip=-1", "train.grad_clip: -1.0 is not in (0, 1000000]"),
    ("train.min_lr=-0.1", "train.min_lr: -0.1 is not in [0, 1000000]"),
    ("train.min_lr=0.1", "train.min_lr: 0.1 is above train.lr"),
    ("train.eval_every=0", "train.eval_every: 0 is not in [1, 100000]"),
    ("train.weight_decay=-1", "train.weight_decay: -1.0 is not in [0, 1000000]"),
    ("train.label_smoothing=2.0", "train.label_smoothing: 2.0 is not in [0, 1)"),
    ("train.lr=.nan", "train.lr: nan is not a finite number"),
    ("train.device=tpu", "train.device: 'tpu' is not valid"),
    ("data.val_fraction=1", "data.val_fraction: 1.0 is not in (0, 1)"),
    ("method.name=vpt", None),
    ("train.lr=1e-3", None),
])
def test_every_number_has_its_range_at_resolve_time(override, message):
    if message is None:
        resolve_config(None, [override])
        return
    with pytest.raises(ConfigError) as info:
        resolve_config(None, [override])
    assert message in str(info.value)


def test_yaml_1_1_floats_are_numbers():
    assert resolve_config(None, ["train.lr=1e-3", "train.min_lr=5E-7"]).train.lr == 0.001


@pytest.mark.parametrize(("override", "message"), [
    ("data.image_size=7", "data.image_size: 7 but the backbone takes 32x32 inputs"),
    ("backbone.img_size=36", "backbone.img_size: (36, 36) is not a multiple of"),
])
def test_sizes_that_do_not_fit_the_backbone_fail_before_training(override, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_model(resolve_config(None, tiny_run("linear", 1, override)), 3)


def test_a_kill_while_writing_the_first_resume_state_leaves_no_duplicate_row(tmp_path, monkeypatch):
    real = checkpoint_files.atomic_save
    seen = {"resume": 0}

    def killed_once(obj, path):
        if path.name == "resume.pt" and not seen["resume"]:
            seen["resume"] += 1
            raise KeyboardInterrupt
        real(obj, path)

    monkeypatch.setattr(checkpoint_files, "atomic_save", killed_once)
    cfg = resolve_config(None, tiny_run("linear", 2))
    with pytest.raises(RunInterrupted):
        fit(cfg, tmp_path / "run")
    fit(cfg, tmp_path / "run")
    assert [r["epoch"] for r in rows(tmp_path / "run")] == [1, 2]


def test_a_torn_metrics_line_does_not_break_resume(tmp_path):
    cfg = resolve_config(None, tiny_run("linear", 2))

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        fit(cfg, tmp_path / "run", on_epoch=stop)
    with open(tmp_path / "run" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "train_lo')  # what a crash of an appending writer would leave
    fit(cfg, tmp_path / "run")
    assert [r["epoch"] for r in rows(tmp_path / "run")] == [1, 2]


def test_run_files_get_the_mode_of_a_plain_open(two_epochs, tmp_path):
    """Atomic writes go through a private temp file; what they leave is readable as the umask says, and a file
    that already existed keeps its mode."""
    (tmp_path / "plain").write_text("")
    plain = (tmp_path / "plain").stat().st_mode & 0o777
    assert {p.name: p.stat().st_mode & 0o777 for p in two_epochs.iterdir() if p.is_file() and p.name != ".lock"} == {
        p.name: plain for p in two_epochs.iterdir() if p.is_file() and p.name != ".lock"}
    kept = tmp_path / "kept.yaml"
    kept.write_text("a: 1\n")
    kept.chmod(0o640)
    atomic_write_text("a: 2\n", kept)
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "a: 2\n"


def test_a_truncated_resume_state_is_one_line(finished):
    state = finished / "resume.pt"
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(UsageError, match="resume.pt cannot be resumed from .*; last.pt keeps"):
        fit(RunFolder(finished).resume_config(["train.epochs=3"]), finished)


def test_a_resume_state_of_a_newer_format_is_one_line(finished):
    state = torch.load(finished / "resume.pt", map_location="cpu", weights_only=True)
    assert state["format_version"] == RESUME_FORMAT
    assert set(state) == {"format_version", "epoch", "step", "model", "optimizer", "scaler", "best", "rows"}
    torch.save({**state, "format_version": RESUME_FORMAT + 1}, finished / "resume.pt")
    with pytest.raises(UsageError, match=f"resume.pt cannot be resumed from .*format {RESUME_FORMAT + 1}; this insvp "
                                         f"reads <= {RESUME_FORMAT}"):
        fit(RunFolder(finished).resume_config(["train.epochs=3"]), finished)


def test_a_format_1_checkpoint_reads_with_named_classes(finished):
    ckpt = torch.load(finished / "best.pt", map_location="cpu", weights_only=True)
    assert ckpt["classes_named"] is True and set(ckpt) == {*CHECKPOINT_KEYS, "classes_named"}
    del ckpt["classes_named"]
    torch.save({**ckpt, "format_version": 1}, finished / "old.pt")
    assert Checkpoint.read(finished / "old.pt").classes_named is True


def test_a_checkpoint_missing_keys_is_named(tmp_path, cli):
    torch.save({"format_version": 1, "state_dict": {}}, tmp_path / "hand.pt")
    code, output = cli("evaluate", tmp_path / "hand.pt")
    one_line_error(output, code, 2, "lacks config, method, backbone, classes, epoch, metrics")


def test_skipped_test_and_val_images_are_counted_in_the_summary(tmp_path):
    from tests.fabricate import make_imagefolder

    make_imagefolder(tmp_path / "data", with_val=True)
    broken = sorted((tmp_path / "data" / "test").rglob("*.*"))[0]
    broken.write_bytes(b"not an image")
    cfg = resolve_config(None, tiny_run("linear", 1, "data.name=imagefolder", f"data.root={tmp_path / 'data'}",
                                        "data.classes=null", "data.on_bad_image=skip"))
    summary = fit(cfg, tmp_path / "run")
    assert summary["skipped_bad_images"] == {"test": 1, "val": 0}


def test_divergence_in_the_first_epoch_says_nothing_was_kept(tmp_path, monkeypatch):
    real = training.build_criterion
    monkeypatch.setattr(training, "build_criterion",
                        lambda cfg, mixup: lambda logits, y: real(cfg, mixup)(logits, y) * float("nan"))
    with pytest.raises(TrainingDiverged, match="no epoch finished, so nothing was kept"):
        fit(resolve_config(None, tiny_run("linear", 1)), tmp_path / "run")


def test_a_resume_file_of_format_2_continues_the_run(tmp_path):
    """resume.pt written by earlier versions (the scheduler's state, groups without their decay flag) still resumes,
    to the same numbers as the run that was never interrupted."""
    cfg = resolve_config(None, tiny_run("vpt", 3))
    full = fit(cfg, tmp_path / "full")

    def stop(row):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        fit(cfg, tmp_path / "old", on_epoch=stop)
    path = tmp_path / "old" / "resume.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    step = state.pop("step")
    for group in state["optimizer"]["param_groups"]:
        group["initial_lr"] = cfg.train.lr
        del group["decay"]
    torch.save({**state, "format_version": 2, "scheduler": {"last_epoch": step, "base_lrs": [cfg.train.lr] * 2},
                "rng": {}}, path)
    assert fit(cfg, tmp_path / "old") == full

    def without_timings(run):
        return [{k: v for k, v in r.items() if "seconds" not in k and "per_s" not in k} for r in rows(run)]

    assert without_timings(tmp_path / "old") == without_timings(tmp_path / "full")
