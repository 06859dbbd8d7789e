"""``insvp serve``'s tasks in process: which share one backbone object, that sharing changes no prediction, the model
worker's batching, Grad-CAM's hooks, and the argument checks (tiny random-init ViTs, no server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import insvp_cli
from insvp_cli.common.errors import UsageError
from insvp_cli.methods import METHODS
from insvp_cli.serve import checkpoints
from insvp_cli.serve.batching import ModelWorker
from insvp_cli.serve.settings import ServeSettings, TaskSpec, task_specs
from insvp_cli.serve.tasks import load_tasks
from tests.conftest import TINY_CLASSES, tiny_checkpoint, tiny_overrides

OWN_BACKBONE = {"full", "partial", "bias"}  # their checkpoints hold backbone weights
SOURCE_CLASSIFIER = {"ilmvp", "autovp"}  # they read the backbone's own classifier: another backbone object


@pytest.fixture(scope="module")
def every_method(tmp_path_factory) -> dict[str, Path]:
    """A checkpoint of every registered method on the same tiny random-init ViT."""
    root = tmp_path_factory.mktemp("methods")
    found = {}
    for method in METHODS.names():
        (root / method).mkdir()
        found[method] = tiny_checkpoint(root / method, tiny_overrides("p8_d48_32px", method))
    return found


def test_every_method_shares_the_backbone_unless_its_weights_change_it(every_method):
    tasks = load_tasks([TaskSpec(m, path) for m, path in every_method.items()], device="cpu")
    backbone = {name: task.served.model.backbone for name, task in tasks.items()}
    plain = [m for m in tasks if m not in OWN_BACKBONE | SOURCE_CLASSIFIER]
    assert all(backbone[m] is backbone["insvp"] for m in plain)
    assert backbone["ilmvp"] is backbone["autovp"] and backbone["ilmvp"] is not backbone["insvp"]
    owned = [backbone[m] for m in OWN_BACKBONE]
    assert len({id(b) for b in owned}) == 3 and not any(b is backbone["insvp"] for b in owned)
    assert tasks["full"].describe()["backbone"]["shared"] is False
    assert sorted(tasks["ilmvp"].shared_with) == ["autovp"] and len(tasks["vpt"].shared_with) == len(plain) - 1
    # every task, one after the other on the shared backbones, predicts what its checkpoint predicts alone
    x = torch.randn(3, 3, 32, 32)
    for name, task in tasks.items():
        with torch.no_grad():
            alone = insvp_cli.load_model(every_method[name])(x).softmax(dim=1)
        torch.testing.assert_close(task.served.probabilities(x), alone, rtol=0, atol=1e-6, msg=name)
        assert task.classes == TINY_CLASSES
        assert not any(p.requires_grad for p in task.served.model.parameters())


def test_parameter_counts_are_the_training_summarys(tmp_path):
    """``trainable_params`` and ``extra_params`` are summary.json's ``trainable_params(_without_head)``."""
    from insvp_cli.methods.build import build_model
    from tests.conftest import tiny_config

    overrides = tiny_overrides("p8_d48_32px", "vpt")
    model = build_model(tiny_config(overrides), len(TINY_CLASSES))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and n.startswith("head."))
    served = checkpoints.restore(checkpoints.read(tiny_checkpoint(tmp_path, overrides)), torch.device("cpu"))
    assert (served.trainable_params, served.extra_params) == (trainable, trainable - head) and head == 5 * 48 + 5


def test_a_method_that_changes_the_backbone_gets_one_of_its_own(every_method, monkeypatch):
    """The trial on the meta device catches a method that replaces one of the backbone's modules."""
    from insvp_cli.methods import build

    original = build.build_model

    def rewriting(cfg, num_classes, backbone=None):
        model = original(cfg, num_classes, backbone=backbone)
        model.backbone.blocks[0].mlp.act = nn.ReLU()
        return model

    monkeypatch.setattr(build, "build_model", rewriting)
    tasks = load_tasks([TaskSpec("a", every_method["linear"]), TaskSpec("b", every_method["vpt"])], device="cpu")
    assert tasks["a"].served.model.backbone is not tasks["b"].served.model.backbone
    assert tasks["a"].shared_with == tasks["b"].shared_with == []


def test_the_worker_batches_concurrent_requests_up_to_the_limit_and_keeps_their_order():
    seen: list[int] = []

    def run(task: str, images: torch.Tensor) -> torch.Tensor:
        seen.append(len(images))
        return images.flatten(1)[:, :2] * (2.0 if task == "b" else 1.0)

    worker = ModelWorker(run, max_batch=4, max_wait=0.2)
    worker.start()
    try:
        futures = [worker.predict("a", [torch.full((3, 1, 1), float(i))]) for i in range(6)]
        other = worker.predict("b", [torch.full((3, 1, 1), 7.0), torch.full((3, 1, 1), 8.0)])
        call = worker.call(lambda: "explained")
        assert [f.result(5)[0][0].item() for f in futures] == [0, 1, 2, 3, 4, 5]
        assert [r[0].item() for r in other.result(5)] == [14.0, 16.0] and call.result(5) == "explained"
    finally:
        worker.stop()
    assert seen[0] == 4 and sorted(seen) == [2, 2, 4]  # 4 of 6 at once (full), then the rest after the wait
    assert worker.pending == 0


def test_the_worker_never_merges_with_max_batch_1_and_reports_a_failure_to_each_request():
    calls = []

    def run(task: str, images: torch.Tensor) -> torch.Tensor:
        calls.append(len(images))
        if task == "broken":
            raise RuntimeError("no memory left")
        return images.flatten(1)

    worker = ModelWorker(run, max_batch=1, max_wait=1.0)
    worker.start()
    try:
        started = time.monotonic()
        ok = worker.predict("a", [torch.zeros(3, 1, 1)] * 3)
        broken = worker.predict("broken", [torch.zeros(3, 1, 1)])
        assert len(ok.result(5)) == 3 and time.monotonic() - started < 0.5  # a full batch of 1 never waits
        with pytest.raises(RuntimeError, match="no memory left"):
            broken.result(5)
    finally:
        worker.stop()
    assert calls == [1, 1, 1, 1]


def test_gradcam_leaves_no_hook_on_a_shared_backbone(every_method):
    from insvp_cli.serve.explain import gradcam

    tasks = load_tasks([TaskSpec("insvp", every_method["insvp"]), TaskSpec("vpt", every_method["vpt"])], "cpu")
    served = tasks["vpt"].served
    x = torch.randn(3, 32, 32)
    result = gradcam(served, x, tasks["vpt"].classes)
    layer = served.model.cam_layer()
    assert not layer._forward_hooks and not layer._backward_hooks and not layer._forward_pre_hooks
    expected = served.probabilities(x[None])[0]
    assert result["class"] == TINY_CLASSES[int(expected.argmax())]
    assert result["probability"] == pytest.approx(float(expected.max()), abs=1e-6)
    # the other task on the same backbone still predicts what its checkpoint predicts alone
    with torch.no_grad():
        alone = insvp_cli.load_model(every_method["insvp"])(x[None]).softmax(dim=1)
    torch.testing.assert_close(tasks["insvp"].served.probabilities(x[None]), alone, rtol=0, atol=1e-6)


def test_task_names_come_from_the_run_folders_and_stay_unique(tmp_path):
    for run in ("svhn-vpt", "other/svhn-vpt", "with space"):
        (tmp_path / run).mkdir(parents=True)
        for name in ("best.pt", "last.pt"):
            (tmp_path / run / name).write_bytes(b"not read here")
    (tmp_path / "a=b.pt").write_bytes(b"not read here")
    specs = task_specs([str(tmp_path / "svhn-vpt"), str(tmp_path / "other/svhn-vpt/best.pt"),
                        str(tmp_path / "svhn-vpt/last.pt"), f"mine={tmp_path / 'with space'}",
                        str(tmp_path / "with space"), str(tmp_path / "a=b.pt")])
    assert [s.name for s in specs] == ["svhn-vpt", "svhn-vpt-2", "svhn-vpt-last", "mine", "with-space", "a-b"]
    assert specs[0].checkpoint == tmp_path / "svhn-vpt" / "best.pt"


@pytest.mark.parametrize(("args", "message"), [
    ([], "name at least one checkpoint"),
    (["x=missing.pt"], "checkpoint missing.pt does not exist"),
    (["a/b={ckpt}"], "task name 'a/b'"),
    (["t={ckpt}", "t={ckpt}"], "task name 't' is given twice"),
])
def test_bad_task_arguments_are_usage_errors(args, message, every_method):
    with pytest.raises(UsageError, match=message):
        task_specs([a.format(ckpt=every_method["linear"]) for a in args])


@pytest.mark.parametrize(("settings", "message"), [
    (ServeSettings(port=70000), "--port 70000"), (ServeSettings(max_batch=0), "--max-batch 0"),
    (ServeSettings(batch_wait_ms=-1), "--batch-wait -1"), (ServeSettings(max_upload_mb=0), "--max-upload 0"),
    (ServeSettings(drain_timeout=0), "--drain-timeout 0"),
])
def test_bad_settings_are_usage_errors(settings, message):
    with pytest.raises(UsageError, match=message):
        settings.check()


def test_loopback_hosts():
    assert ServeSettings().loopback and ServeSettings(host="::1").loopback and ServeSettings(host="localhost").loopback
    assert not ServeSettings(host="0.0.0.0").loopback and not ServeSettings(host="example.org").loopback


def test_requests_to_one_task_from_many_threads_are_answered_in_order():
    worker = ModelWorker(lambda task, images: images.flatten(1), max_batch=8, max_wait=0.005)
    worker.start()
    results: dict[int, float] = {}

    def client(i: int) -> None:
        results[i] = worker.predict("t", [torch.full((1,), float(i))]).result(5)[0].item()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    worker.stop()
    assert results == {i: float(i) for i in range(32)} and worker.batches < 32
