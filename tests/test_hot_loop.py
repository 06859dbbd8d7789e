"""The training loop as a GPU sees it, checked on the CPU for every registered method: one tiny epoch in bf16 autocast,
and how often the host reads a tensor back (``item``, ``tolist``, ``bool``, ``float``, ``int``: each one makes the host
wait for the device on CUDA) while it trains."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

import insvp_cli.methods.lion.model as lion
import insvp_cli.train.engine as engine
import insvp_cli.train.loop as loop
from insvp_cli.methods import METHODS
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.checkpoint import Checkpoint
from tests.conftest import tiny_run

READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__")
# a method's own settings for a tiny run: AlexNet's smallest input, no download; a coarse-label hierarchy
SETS = {"sidetune": ("method.side_weights=none", "method.side_image_size=64"),
        "damvp": ("method.num_clusters=2",)}
# reads of CPU tensors, which do not wait for a GPU: torch.optim's single-tensor AdamW reads its step counter, which
# stays on the CPU when the parameters are on a GPU (not capturable); the loader decodes and augments on the CPU (in its
# worker processes, on a GPU machine)
CPU_SIDE = (str(Path(torch.__file__).parent / "optim"), str(Path(torch.__file__).parent / "utils" / "data"))


def _on_cpu_side(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith(CPU_SIDE):
            return True
        frame = frame.f_back
    return False


class HostReads:
    """Counts the reads of tensors back to the host made by Python code, but those of :data:`CPU_SIDE`."""

    def __init__(self, monkeypatch):
        self.count, self.where, self.on = 0, [], False
        for name in READS:
            monkeypatch.setattr(torch.Tensor, name, self._counted(getattr(torch.Tensor, name)))

    def _counted(self, read):
        def counted(tensor, *args, **kwargs):
            if self.on and not _on_cpu_side(frame := sys._getframe(1)):
                self.count += 1
                self.where.append(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
            return read(tensor, *args, **kwargs)

        return counted

    def during(self, function):
        """``function``, counting the reads made while it runs."""
        def counting(*args, **kwargs):
            self.on = True
            try:
                return function(*args, **kwargs)
            finally:
                self.on = False

        return counting


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_trains_an_epoch_in_bf16_on_the_cpu_reading_back_once_per_interval(method, tmp_path,
                                                                                        monkeypatch):
    hierarchy = tmp_path / "hierarchy.yaml"
    hierarchy.write_text("round: ['0']\nstraight: ['1', '2']\n")
    # 14 images in batches of 4: steps of 4, 4, 4 and 2 images; Mixup and CutMix on (the defaults), a clipped gradient
    cfg = resolve_config(None, tiny_run(method, 1, "train.precision=bf16", "data.shots=5", "data.augment=true",
                                        "train.grad_clip=1.0", f"data.hierarchy={hierarchy}", *SETS.get(method, ()),
                                        batch_size=4), bind=True)
    reads = HostReads(monkeypatch)
    epochs, evaluations = [], []
    monkeypatch.setattr(engine, "SYNC_EVERY", 2)  # a read every 2 steps, and one at the end of the epoch
    # LION's solver asks the CPU whether it converged at every iteration (free there); on a GPU it does not
    monkeypatch.setattr(lion, "EARLY_EXIT_DEVICES", frozenset())

    def train_epoch(model, loader, *args, **kwargs):
        reads.count, reads.where = 0, []
        stats = reads.during(engine.train_one_epoch)(model, loader, *args, **kwargs)
        epochs.append((len(loader), reads.count, list(reads.where)))
        return stats

    def evaluation(*args, **kwargs):
        reads.count = 0
        result = reads.during(engine.evaluate)(*args, **kwargs)
        evaluations.append(reads.count)
        return result

    monkeypatch.setattr(loop, "train_one_epoch", train_epoch)
    monkeypatch.setattr(loop, "evaluate", evaluation)
    summary = loop.fit(cfg, tmp_path / "run")
    steps, count, where = epochs[0]
    assert steps == 4 and count == steps // 2 + 1, where
    assert evaluations and set(evaluations) == {1}  # each evaluation reads its counts back once
    row = Checkpoint.read(tmp_path / "run" / "last.pt").metrics
    assert math.isfinite(row["train_loss"]) and row["train_images"] == 14
    assert Checkpoint.read(tmp_path / "run" / "best.pt").config.train.precision == "bf16"
    assert 0 <= summary["test_acc"] <= 100


@pytest.mark.parametrize("size", [(208, 52), (30, 52), (48, 16)])  # G_s's poolings at 224 px, and at 32 px
def test_g_s_pools_with_deterministic_operators_to_the_same_values_and_gradients(size):
    from insvp_cli.methods.insvp.layers import _max_pool

    side, out = size
    x = torch.randn(2, 3, side, side, dtype=torch.float64, requires_grad=True)
    plain = _max_pool(x, out)
    (grad_plain,) = torch.autograd.grad(plain.sum(), x)
    saved = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        chosen = _max_pool(x, out)
        (grad_chosen,) = torch.autograd.grad(chosen.sum(), x)
    finally:
        torch.use_deterministic_algorithms(saved)
    assert torch.equal(plain, chosen) and torch.equal(grad_plain, grad_chosen)


def test_deterministic_and_tf32_are_recorded_and_put_back_after_the_run(tmp_path):
    cfg = resolve_config(None, tiny_run("insvp", 1, "train.deterministic=true", "data.shots=4", batch_size=4))
    seen = []
    real = loop.train_one_epoch

    def watched(*args, **kwargs):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "train_one_epoch", watched)
        loop.fit(cfg, tmp_path / "run")
    assert seen == [True] and not torch.are_deterministic_algorithms_enabled()
    stored = (tmp_path / "run" / "config.yaml").read_text()
    assert "deterministic: true" in stored and "tf32: true" in stored
