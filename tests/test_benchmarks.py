"""The benchmark scripts against today's package: they import, and the release-as-published model they measure
is the ``release`` preset's arithmetic with ``G_s`` recomputed in every prompted block."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, tiny_overrides


@pytest.fixture
def bench(monkeypatch):
    """``import`` of a module of ``benchmarks/`` (the scripts import their shared ``_models`` by that name)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module


@pytest.mark.parametrize("script", ["flops", "throughput", "startup", "export_throughput", "profile_insvp",
                                    "gpu_report", "serve_memory", "serve_load", "train_speed", "data_throughput",
                                    "resume_check"])
def test_every_benchmark_imports_against_the_package(script, bench):
    if script == "export_throughput" and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip('needs the export extra: pip install "insvp[export]"')
    assert callable(bench(script).main)


def test_release_as_published_equals_the_release_with_g_s_in_every_block(bench):
    models = bench("_models")
    cfg = models.method_config("unused", *tiny_overrides("p8_d48_32px", "insvp"), "method.preset=release")
    ours = models.build_method(cfg, num_classes=5).eval()
    published = models.published_from(ours)
    calls = []
    published.insvp.specific_prompter.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(published(x), ours(x))
    assert len(calls) == ours.insvp.num_blocks > 1


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason='needs the export extra (insvp[export])')
def test_gpu_script_on_a_cpu_machine_says_so_runs_the_smoke_and_exits_0(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would run the real benchmark")
    report = tmp_path / "report.txt"
    # the script runs `python` and `insvp` from PATH, as in the shell of a user whose environment is active
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), str(report)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600, env={**os.environ, "PATH": path})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = report.read_text()
    assert "no CUDA device: the CPU smoke of every step follows" in text
    sections = re.findall(r"^== (\d+)\. .*: exit (\S+), ", text, flags=re.MULTILINE)
    assert [n for n, _ in sections] == [str(n) for n in range(1, 11)] and {code for _, code in sections} == {"0"}
    assert "targets:" in text and "release G_g conv2 25x25" in text and "test acc" in text.lower()
    # every method of Table 1 trained, the loader beside the model, two processes
    assert all(f"\n{row:<24} " in text for row in ("Full", "VPT", "DAM-VP", "TransHP", "LION", "InsVP release preset"))
    assert "from the cache" in text and "model: insvp (quickstart)" in text
    assert text.count("interrupted after epoch 1:  identical") == 2  # on the CPU, with and without deterministic
    assert "failed:" not in text


def test_gpu_report_stops_at_once_when_cuda_is_expected_but_unusable(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA works here")
    report = tmp_path / "report.txt"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_report.py"), "--out", str(report),
                           "--expect-cuda"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "error: CUDA is expected here (--expect-cuda) but cannot be used: torch" in proc.stderr
    assert "torch.cuda.is_available() is False" in report.read_text() and "== 1." not in report.read_text()
