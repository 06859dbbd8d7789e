"""A run interrupted at every epoch boundary (a real SIGINT, through the installed ``insvp`` script) and resumed each
time equals the uninterrupted run, metrics and weights, with and without loader workers, with augmentation, Mixup,
CutMix and dropout on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import insvp, tiny_run

EPOCHS = 3
# imported by every Python process of the test's commands: after epoch INSVP_TEST_INTERRUPT_AFTER is saved, the process
# sends itself SIGINT, as a user's Ctrl-C arriving at that epoch's boundary
HOOK = """
import os, signal
if os.environ.get("INSVP_TEST_INTERRUPT_AFTER"):
    import insvp_cli.train.state as state
    save = state.RunState.save
    def save_then_interrupt(self, *args, **kwargs):
        save(self, *args, **kwargs)
        if self.rows[-1]["epoch"] == int(os.environ["INSVP_TEST_INTERRUPT_AFTER"]):
            os.kill(os.getpid(), signal.SIGINT)
    state.RunState.save = save_then_interrupt
"""


def _sets(workers: int) -> list[str]:
    sets = tiny_run("insvp", EPOCHS, f"data.num_workers={workers}", "data.augment=true", "data.shots=20",
                    "train.mixup=0.8", "train.cutmix=1.0", "method.dropout=0.2", batch_size=16)
    return [x for s in sets for x in ("--set", s)]


def _outcome(run: Path) -> tuple[list[dict], dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [{k: v for k, v in row.items() if "seconds" not in k and "per_s" not in k} for row in rows]
    weights = [torch.load(run / name, weights_only=True)["state_dict"] for name in ("last.pt", "best.pt")]
    return rows, json.loads((run / "summary.json").read_text()), *weights


def _equal(a, b) -> None:
    rows_a, summary_a, *weights_a = a
    rows_b, summary_b, *weights_b = b
    assert rows_a == rows_b and summary_a == summary_b
    for x, y in zip(weights_a, weights_b, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.fixture
def hook(tmp_path, monkeypatch) -> Path:
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "hook"))
    return tmp_path


def test_a_run_resumed_at_every_epoch_boundary_equals_the_uninterrupted_one_whatever_the_workers(hook, monkeypatch):
    outcomes = {}
    for workers in (0, 2):
        whole = hook / f"whole-{workers}"
        proc = insvp("train", *_sets(workers), "--out", whole)
        assert proc.returncode == 0, proc.stderr
        cut = hook / f"cut-{workers}"
        for epoch in range(1, EPOCHS):
            monkeypatch.setenv("INSVP_TEST_INTERRUPT_AFTER", str(epoch))
            proc = insvp("train", *_sets(workers), "--out", cut) if epoch == 1 else insvp("train", "--resume", cut)
            assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr
            assert f"insvp train --resume {cut}" in proc.stderr
            assert len((cut / "metrics.jsonl").read_text().splitlines()) == epoch
        monkeypatch.delenv("INSVP_TEST_INTERRUPT_AFTER")
        proc = insvp("train", "--resume", cut)
        assert proc.returncode == 0, proc.stderr
        assert f"resuming {cut} at epoch {EPOCHS}/{EPOCHS}" in proc.stderr
        outcomes[workers] = _outcome(whole)
        _equal(_outcome(cut), outcomes[workers])
    # the loader's randomness does not depend on its workers either: the same run with 0 or 2 of them
    _equal(outcomes[0], outcomes[2])
