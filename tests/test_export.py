"""``insvp export``: every registered method to ONNX and torch.export, checked against PyTorch."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import insvp_cli
from insvp_cli.common.errors import UsageError
from insvp_cli.methods import METHODS
from insvp_cli.methods.insvp.pooling import adaptive_max_pool2d
from insvp_cli.use.export import FORMATS, MODEL_FILES, TOLERANCE, export_model, logit_difference
from tests.conftest import REPO, tiny_checkpoint, tiny_overrides, tiny_swin_overrides
from tests.conftest import TINY_CLASSES as CLASSES

needs_onnx = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason='ONNX export needs the export extra: pip install "insvp[export]"')
PARAMS = [pytest.param(fmt, marks=needs_onnx) if fmt == "onnx" else fmt for fmt in FORMATS]
# LION's solver is unrolled to its iteration cap in the exported graph: a lower cap traces the same steps faster
FEWER_STEPS = {"lion": ["method.max_iter=6"]}


def _run_exported(folder: Path, fmt: str, x: torch.Tensor) -> torch.Tensor:
    """The exported file alone, loaded the way a consumer loads it."""
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {"image": x.numpy()})[0])
    return torch.export.load(folder / "model.pt2").module()(x)


def _assert_exported_like_pytorch(checkpoint: Path, folder: Path, fmt: str) -> None:
    pre = json.loads((folder / "preprocess.json").read_text())
    assert json.loads((folder / "labels.json").read_text()) == CLASSES
    _, channels, height, width = pre["input"]["shape"]
    assert pre["input"]["shape"][0] == "batch" and pre["output"]["shape"] == ["batch", len(CLASSES)]
    model = insvp_cli.load_model(checkpoint)
    x = torch.randn(5, channels, height, width)  # a batch size the export never saw
    with torch.no_grad():
        assert logit_difference(_run_exported(folder, fmt, x), model(x)) <= TOLERANCE


@pytest.mark.parametrize("fmt", PARAMS)
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_exports_on_a_vit(method, fmt, tmp_path):
    checkpoint = tiny_checkpoint(tmp_path, [*tiny_overrides("p8_d48_32px", method), *FEWER_STEPS.get(method, [])])
    result = export_model(checkpoint, fmt)
    assert result.out == tmp_path / f"export-{fmt}" and result.max_diff <= TOLERANCE
    assert sorted(p.name for p in result.files) == ["labels.json", MODEL_FILES[fmt], "preprocess.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", f"export-{fmt}"]  # no staging folder left
    _assert_exported_like_pytorch(checkpoint, result.out, fmt)


@pytest.mark.parametrize("fmt", PARAMS)
def test_insvp_on_swin_exports(fmt, tmp_path):
    """VPT's Swin scheme: prompts in every (shifted, padded) window, per-stage widths, G_s projections."""
    checkpoint = tiny_checkpoint(tmp_path, tiny_swin_overrides("w6_d16_40px", "insvp"))
    result = export_model(checkpoint, fmt, tmp_path / "out")
    _assert_exported_like_pytorch(checkpoint, result.out, fmt)


@pytest.mark.parametrize(("size", "out"), [((30, 30), 52), ((208, 208), 52), ((48, 48), 16), ((7, 9), (3, 4)),
                                           ((13, 5), (5, 8)), ((6, 6), 1)])
def test_adaptive_max_pool2d_rewrite_equals_pytorch(size, out):
    x = torch.randn(2, 3, *size)
    out = (out, out) if isinstance(out, int) else out
    values, indices = adaptive_max_pool2d(x, out)
    expected_values, expected_indices = F.adaptive_max_pool2d(x, out, return_indices=True)
    assert torch.equal(values, expected_values) and torch.equal(indices, expected_indices)


@needs_onnx
def test_quickstart_model_docs_consumer_agrees_with_predict(digit_run, tmp_path, monkeypatch):
    """The docs' onnxruntime + PIL + numpy code (docs/using.md), run as written, gives insvp predict's classes and
    probabilities."""
    folder = tmp_path / "runs" / "quickstart" / "insvp" / "export-onnx"
    result = export_model(digit_run.checkpoint, "onnx", folder)
    assert result.max_diff <= TOLERANCE
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "digit-8.png", tmp_path / "docs" / "digit-8.png")
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "using.md").read_text(), re.S)
    consumer = next(b for b in blocks if "import onnxruntime" in b)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(consumer, "docs/using.md", "exec"), namespace)  # the page's example, as written
    predicted = insvp_cli.predict(digit_run.checkpoint, [tmp_path / "docs" / "digit-8.png", *digit_run.test_images],
                                  top_k=1)
    assert namespace["labels"][namespace["probabilities"].argmax()] == predicted.rows[0].classes[0]
    for row in predicted.rows:
        logits = namespace["session"].run(None, {"image": namespace["preprocess"](row.path, namespace["pre"])})[0][0]
        p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert namespace["labels"][p.argmax()] == row.classes[0]
        assert abs(p.max() - row.probabilities[0]) < 1e-4


@needs_onnx
def test_a_mismatch_exits_1_and_leaves_the_earlier_export(tmp_path, monkeypatch, cli):
    import onnxruntime as ort

    checkpoint = tiny_checkpoint(tmp_path, tiny_overrides("p8_d48_32px", "linear"))
    out = tmp_path / "exported"
    export_model(checkpoint, "onnx", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_run = ort.InferenceSession.run
    monkeypatch.setattr(ort.InferenceSession, "run", lambda self, *a, **k: [y + 2e-4 for y in real_run(self, *a, **k)])
    code, err = cli("export", str(checkpoint), "--out", str(out))
    assert code == 1 and "Traceback" not in err
    assert "export failed: the exported onnx model's logits differ from PyTorch's by 2.00e-04 (more than 0.0001)" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "exported"]  # no staging folder left


def test_a_model_torch_export_cannot_trace_exits_2(tmp_path, monkeypatch, cli):
    import insvp_cli.runs.trained as trained

    real_restore = trained.build_trained_model

    def restore_data_dependent(*args, **kwargs):
        model = real_restore(*args, **kwargs)
        forward = model.forward
        model.forward = lambda x: forward(x) if x.mean() > 0 else -forward(x)  # a branch on the data
        return model

    checkpoint = tiny_checkpoint(tmp_path, tiny_overrides("p8_d48_32px", "linear"))
    monkeypatch.setattr(trained, "build_trained_model", restore_data_dependent)
    code, err = cli("export", str(checkpoint), "--format", "pt2")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: method linear cannot be exported to pt2: torch.export failed (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


@needs_onnx
def test_a_model_over_2_gib_is_refused_for_onnx(tmp_path, monkeypatch):
    import insvp_cli.use.export as export

    monkeypatch.setattr(export, "ONNX_MAX_BYTES", 1024)
    checkpoint = tiny_checkpoint(tmp_path, tiny_overrides("p8_d48_32px", "linear"))
    with pytest.raises(UsageError, match="one ONNX file holds at most 2 GiB: use --format pt2"):
        export_model(checkpoint, "onnx")


def test_missing_extra_through_the_installed_script(tmp_path):
    """Without onnxruntime the command names the extra to install, in one line, with exit status 2."""
    checkpoint = tiny_checkpoint(tmp_path, tiny_overrides("p8_d48_32px", "linear"))
    shim = tmp_path / "shim" / "onnxruntime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError(\"No module named 'onnxruntime'\")\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(shim.parent)}
    proc = subprocess.run([str(Path(sys.executable).with_name("insvp")), "export", str(checkpoint)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ('error: ONNX export needs onnxruntime, which is not installed: '
                                   'pip install "insvp[export]"')


def test_an_unknown_format_exits_2(tmp_path, cli):
    checkpoint = tiny_checkpoint(tmp_path, tiny_overrides("p8_d48_32px", "linear"))
    code, err = cli("export", str(checkpoint), "--format", "torchscript")
    assert code == 2 and "'torchscript' is not one of 'onnx', 'pt2'" in err and "Traceback" not in err
