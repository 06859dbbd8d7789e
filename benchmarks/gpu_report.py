"""One report of InsVP on a CUDA GPU: throughput, the prompters' convolutions, torch.compile, a quickstart run, export
and predict, each step timed, in one text file. ``benchmarks/gpu.sh`` runs it.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). With a CUDA device (sized for one
H100 or H200, under 8 minutes):

1. ``throughput.py --device cuda --compile``: every row at ViT-B/16, 224 px, batch 64, bf16 autocast, cuDNN
   benchmark mode, plus our presets trained through ``torch.compile``;
2. ``profile_insvp.py --device cuda``: the prompters' convolutions as ``conv2d`` and as FFTs (what ``conv_impl:
   auto`` should pick on CUDA) and one training step of each preset part by part, at ViT-B/16, batch 64;
3. the quickstart on CUDA: ``insvp train`` for one epoch (bf16), then ``insvp evaluate``;
4. ``insvp export`` of that checkpoint to ONNX and ``insvp predict`` on 500 digit images (``export_throughput.py``'s
   predict-against-evaluate comparison on CUDA).

Without CUDA it says so, runs the same steps as a smoke test on the CPU at toy sizes (a tiny ViT, one step), and
exits 0 when they all ran. The exit status is 1 when a step failed (its output is in the report either way).

Run from the repository root::

    bash benchmarks/gpu.sh                 # writes gpu-report.txt
    python benchmarks/gpu_report.py --out report.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
# the CPU smoke: the same steps at toy sizes, a couple of minutes on two cores
SMOKE_THROUGHPUT = ("--device", "cpu", "--backbone", "vit_tiny_patch16_224", "--img-size", "64", "--batch", "2",
                    "--warmup", "0", "--steps", "1", "--rounds", "1")
SMOKE_PROFILE = ("--device", "cpu", "--backbone", "vit_tiny_patch16_224", "--img-size", "64", "--batch", "2",
                 "--repeats", "1")


def insvp() -> list[str]:
    """The installed ``insvp`` script, or this checkout's package run as a module."""
    script = shutil.which("insvp")
    return [script] if script else [sys.executable, "-m", "insvp_cli"]


def steps(cuda: bool, work: Path) -> list[tuple[str, list[str]]]:
    """(title, command) of every step; the quickstart's files go under ``work``."""
    run, py = work / "quickstart", sys.executable
    device = "cuda" if cuda else "cpu"
    throughput = ("--device", "cuda", "--compile") if cuda else SMOKE_THROUGHPUT
    profile = (("--device", "cuda", "--backbone", "vit_base_patch16_224", "--batch", "64") if cuda
               else SMOKE_PROFILE)
    # the CPU smoke trains on two of the quickstart's five digits: the same steps on two fifths of the images
    quick = ["--recipe", "quickstart", "--set", f"train.device={device}", "--set", "train.epochs=1",
             *([] if cuda else ["--set", "data.classes=[5, 6]"])]
    export = [*insvp(), "export", str(run / "best.pt"), "--format", "onnx", "--out", str(work / "onnx")]
    return [
        ("throughput: every row" + (", torch.compile rows" if cuda else " (CPU smoke)"),
         [py, str(BENCH / "throughput.py"), *throughput]),
        ("the prompters' convolutions and a training step, part by part", [py, str(BENCH / "profile_insvp.py"),
                                                                          *profile]),
        (f"quickstart: one epoch on {device}", [*insvp(), "train", *quick, "--out", str(run)]),
        ("quickstart: evaluate", [*insvp(), "evaluate", str(run / "best.pt"), "--set", f"train.device={device}"]),
        ("export to ONNX (checked against PyTorch)", export),
        ("predict against evaluate on 500 digit images", [py, str(BENCH / "export_throughput.py"), "--device", device,
                                                          "--only-predict", "--rounds", "1" if not cuda else "3"]),
    ]


def environment(cuda: bool) -> list[str]:
    lines = [f"python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}"]
    if cuda:
        props = torch.cuda.get_device_properties(0)
        lines.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, {props.name}, "
                     f"{props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} device(s)")
    else:
        lines.append("no CUDA device: the CPU smoke of every step follows (toy sizes; its numbers mean nothing)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-report.txt"), help="the report (default gpu-report.txt)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds a step may take (default 300)")
    opts = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    report = [f"insvp GPU report, {time.strftime('%Y-%m-%d %H:%M:%S')}", *environment(cuda), ""]
    print("\n".join(report), flush=True)
    failed = 0
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory(prefix="insvp-gpu-") as tmp:
        for i, (title, command) in enumerate(steps(cuda, Path(tmp)), start=1):
            start = time.perf_counter()
            try:
                proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env,
                                      timeout=opts.timeout)
                code, output = proc.returncode, proc.stdout + proc.stderr
            except subprocess.TimeoutExpired as exc:
                code, output = "timeout", f"{exc.stdout or ''}{exc.stderr or ''}"
            failed += code != 0
            section = [f"== {i}. {title}: exit {code}, {time.perf_counter() - start:.0f} s",
                       f"$ {shlex.join(command)}", output.rstrip(), ""]
            print(section[0], flush=True)
            report += section
    opts.out.write_text("\n".join(report) + "\n")
    print(f"report: {opts.out}" + (f"; {failed} step(s) failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
