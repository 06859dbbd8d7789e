"""A run is what it was: its stored config is read back as it is, never resolved again; a resume continues it with
its own batch size, learning rate and schedule; every reader of its checkpoint rebuilds the model that trained."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import insvp_cli.train.loop as loop
from insvp_cli.common.errors import RunInterrupted
from insvp_cli.methods import METHODS
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.checkpoint import Checkpoint
from insvp_cli.runs.folder import RunFolder
from insvp_cli.train.engine import Schedule
from insvp_cli.use.evaluate import evaluate_checkpoint
from tests.conftest import INSVP, tiny_overrides

# what some methods need to run offline, in two epochs, on three digit classes
EXTRAS = {
    "sidetune": ("method.side_weights=none", "method.side_image_size=64"),  # AlexNet without its ImageNet download
    "damvp": ("method.cluster_samples=12", "method.num_clusters=2"),
    "e2vpt": ("method.prune_epoch=1",),  # its published protocol prunes at epoch 100 of 200: at epoch 2 here
}
# how the run is created: as its protocol has it, or with one of the overrides the issue names
CASES = {
    "as-is": (),
    "lr": ("train.lr=0.0123",),
    "batch-size": ("data.batch_size=5",),
    "epochs": ("train.epochs=7",),
    "data-key": ("data.val_fraction=0.3",),
}


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hierarchy") / "digits.yaml"
    path.write_text("low: ['0', '1']\nhigh: ['2']\n")
    return path


def creation_sets(method: str, protocol: str, case: str, hierarchy: Path) -> list[str]:
    """A tiny run of ``method``: 4 training digits of each of 3 classes, its protocol's schedule unless ``case``."""
    extra = (*EXTRAS.get(method, ()), *((f"data.hierarchy={hierarchy}",) if method == "transhp" else ()))
    return [*tiny_overrides("p8_d48_32px", method), f"method.protocol={protocol}", "data.name=digits",
            "data.classes=[0, 1, 2]", "data.shots=4", "data.num_workers=0", "train.device=cpu", *extra, *CASES[case]]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("protocol", ["shared", "published"])
@pytest.mark.parametrize("method", METHODS.names())
def test_a_run_is_what_it_was(method, protocol, case, hierarchy, tmp_path, cli, monkeypatch):
    cfg = resolve_config(None, creation_sets(method, protocol, case, hierarchy))
    run = RunFolder(tmp_path / "run")

    def stop_after_the_first_epoch(row):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):  # epoch 1 of the protocol's (or the override's) epochs, then Ctrl-C
        loop.fit(cfg, run.path, on_epoch=stop_after_the_first_epoch)

    # (a) the stored config, read back, is the config that trained: key for key, and as a whole
    assert yaml.safe_load(run.config_file.read_text()) == cfg.to_dict()
    assert run.read_config() == cfg

    # (b) the resume trains epoch 2 with the stored learning rate, batch size and schedule
    seen = []
    real_epoch = loop.train_one_epoch

    def recording_epoch(model, loader, optimizer, schedule, *args, **kwargs):
        seen.append((optimizer.param_groups[0]["lr"], loader.batch_size, len(loader), schedule.step,
                     model.restart_epochs()))
        return real_epoch(model, loader, optimizer, schedule, *args, **kwargs)

    monkeypatch.setattr(loop, "train_one_epoch", recording_epoch)
    code, output = cli("train", "--resume", run.path, "--set", "train.epochs=2")
    assert code == 0, output
    resumed = run.read_config()
    assert resumed.train.lr == cfg.train.lr and resumed.data.batch_size == cfg.data.batch_size
    assert resumed == resolve_config(None, [*creation_sets(method, protocol, case, hierarchy), "train.epochs=2"])
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["resumed_with"] == {"train.epochs": 2}
    (lr, batch_size, steps_per_epoch, step, restarts), = seen  # one epoch trained, the second
    assert batch_size == cfg.data.batch_size
    expected = resumed.train.lr * Schedule(resumed.train, steps_per_epoch, restarts).factor(step)
    assert lr == pytest.approx(expected, rel=1e-12) and lr > 0  # the middle of the 2-epoch schedule, not its end

    # (c) the checkpoint's readers rebuild the model and transform that trained: its validation accuracy, again
    best = Checkpoint.read(run.best)
    assert best.config == resumed  # evaluate (as predict, export and the figures) loads it with TrainedModel.load
    assert evaluate_checkpoint(run.best, "val")["acc"] == best.metrics["val_acc"]


def _without_timings(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if "seconds" not in k and "per_s" not in k} for r in rows]


def test_ctrl_c_in_the_middle_of_a_published_protocol_run_resumes_to_the_uninterrupted_run(tmp_path):
    """SIGINT while epoch 2 of 3 trains, through the installed script, then ``--resume``: the same rows and weights as
    a run that was never interrupted (VPT's published protocol: SGD, its batch of 128, no Mixup)."""
    sets = [*tiny_overrides("p8_d48_32px", "vpt"), "method.protocol=published", "data.name=digits",
            "data.classes=[0, 1, 2, 3, 4]", "data.num_workers=0", "train.device=cpu", "train.epochs=3", "train.lr=0.05",
            "data.batch_size=32"]
    args = [x for s in sets for x in ("--set", s)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    full = subprocess.run([str(INSVP), "train", *args, "--out", str(tmp_path / "full")], capture_output=True,
                          text=True, env=env, timeout=600)
    assert full.returncode == 0, full.stderr
    # started as from a shell, with Ctrl-C at its default (see tests/test_cli.py)
    shell_like = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                  "signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT]); os.execv(sys.argv[1], sys.argv[1:])")
    cut = RunFolder(tmp_path / "cut")
    proc = subprocess.Popen([sys.executable, "-c", shell_like, str(INSVP), "train", *args, "--out", str(cut.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not cut.read_metrics() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # during epoch 2
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert [r["epoch"] for r in cut.read_metrics()] == [1]
    resumed = subprocess.run([str(INSVP), "train", "--resume", str(cut.path)], capture_output=True, text=True,
                             env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _without_timings(cut.read_metrics()) == _without_timings(RunFolder(tmp_path / "full").read_metrics())
    weights = [Checkpoint.read(RunFolder(tmp_path / name).last).state_dict for name in ("full", "cut")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    summaries = [json.loads((tmp_path / name / RunFolder.SUMMARY).read_text()) for name in ("full", "cut")]
    assert summaries[0] == summaries[1]


def test_reading_a_run_never_calls_the_resolver(tmp_path, cli, monkeypatch):
    """``resolve_config`` makes new runs only: resuming, evaluating, predicting, exporting and planning over a stored
    run read its config as it is. Its code is replaced by one that fails, so every reference to it fails."""
    from insvp_cli.experiments.queue import QueuedRun, status

    sets = [*tiny_overrides("p8_d48_32px", "vpt"), "method.protocol=published", "data.name=digits",
            "data.classes=[0, 1]", "data.shots=4", "data.num_workers=0", "train.device=cpu", "train.epochs=1"]
    cfg = resolve_config(None, sets)
    loop.fit(cfg, tmp_path / "run")

    def refuse(*args, **kwargs):
        raise AssertionError("a stored config reached resolve_config")

    monkeypatch.setattr(resolve_config, "__code__", refuse.__code__)
    run = RunFolder(tmp_path / "run")
    assert status(QueuedRun(cfg, run.path)).status == "done"
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8), (200, 10, 10)).save(images / "red.png")
    for args in (("evaluate", run.path), ("predict", run.path, images, "--device", "cpu"),
                 ("export", run.path, "--format", "pt2", "--out", tmp_path / "export"),
                 ("train", "--resume", run.path, "--set", "train.epochs=2")):
        code, output = cli(*args)
        assert code == 0, output
    assert run.read_config().train.epochs == 2 and run.read_config().data.batch_size == cfg.data.batch_size
