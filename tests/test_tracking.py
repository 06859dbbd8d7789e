"""Training curves (``insvp plot``) and experiment trackers (``train.loggers``): the rows of metrics.jsonl, drawn and
written through TensorBoard and MLflow."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.folder import RunFolder
from insvp_cli.train.loop import fit
from tests.conftest import INSVP, tiny_run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("curves")
    for method in ("linear", "vpt"):
        fit(resolve_config(None, tiny_run(method, 3, "train.test_every_epoch=true")), root / method)
    return [root / "linear", root / "vpt"]


def test_plot_draws_the_curves_of_several_runs(two_runs, tmp_path):
    out = tmp_path / "curves.png"
    # PYTHONPROFILEIMPORTTIME lists every module the command imports on stderr: metrics are drawn without torch
    proc = subprocess.run([INSVP, "plot", *map(str, two_runs), "--out", str(out)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"written: {out}" in proc.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "matplotlib" in imported and "torch" not in imported


@pytest.mark.parametrize(("make", "message"), [
    (lambda tmp: tmp, "is not a run folder"),
    (lambda tmp: (tmp / "config.yaml").write_text("{}") and tmp, "has no finished epoch yet"),
])
def test_plot_of_what_is_not_a_trained_run_exits_2(make, message, tmp_path):
    proc = subprocess.run([INSVP, "plot", str(make(tmp_path))], capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                    reason='needs the tensorboard extra: pip install "insvp[tensorboard]"')
def test_tensorboard_logger_writes_every_row(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(resolve_config(None, tiny_run("linear", 2, "train.loggers=[tensorboard]")), tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    rows = RunFolder(tmp_path / "run").read_metrics()
    for key in ("train_loss", "val_acc", "lr"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert logged == [(r["epoch"], pytest.approx(r[key], rel=1e-6)) for r in rows]


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                    reason='needs the mlflow extra: pip install "insvp[mlflow]"')
def test_mlflow_logger_writes_every_row_and_the_config(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    fit(resolve_config(None, tiny_run("linear", 2, "train.loggers=[mlflow]")), tmp_path / "run")
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'run' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("insvp").experiment_id])
    assert run.data.params["method.name"] == "linear" and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "val_acc")
    rows = RunFolder(tmp_path / "run").read_metrics()
    assert [(m.step, m.value) for m in history] == [(r["epoch"], r["val_acc"]) for r in rows]


def test_a_missing_logger_extra_is_one_line_and_exit_2(tmp_path):
    # the package looks uninstalled: an import of it fails as it would without the extra
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['tensorboard'] = None\n")
    sets = [x for s in tiny_run("linear", 1, "train.loggers=[tensorboard]") for x in ("--set", s)]
    proc = subprocess.run([INSVP, "train", *sets, "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ('error: train.loggers: tensorboard needs the tensorboard package: '
                                   'pip install "insvp[tensorboard]"')
    assert not (tmp_path / "run").exists()
