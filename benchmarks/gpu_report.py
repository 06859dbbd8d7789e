"""One report of InsVP on a CUDA GPU, each step timed, in one text file: ``benchmarks/gpu.sh`` runs it.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). First it checks that CUDA works: where
a GPU is expected (the NVIDIA driver lists one, or ``--expect-cuda``) but torch cannot use it (a driver too old for
the wheel, a broken device), it says why and exits 1 without running anything. With CUDA (sized for one H100 or
H200; the steps share an 8-minute budget, in this order, and a step the budget no longer covers is skipped, said so):

1. ``train_speed.py``: train images/s, peak memory and host syncs per step of every method of Table 1 at ViT-B/16,
   224 px, batch 64, bf16, InsVP with and without ``torch.compile``, and InsVP's ``release`` preset as it trains;
2. ``data_throughput.py``: the loader's images/s for the ``cub`` recipe (from the files and from the cache) beside
   the model's train images/s;
3. a 2-process DDP run (``torchrun``) of the quickstart on the one GPU (the processes share it through gloo);
4. ``resume_check.py``: whether a resumed run (and a second run) equals the first, bit for bit, with and without
   ``train.deterministic``;
5. the quickstart on CUDA: ``insvp train`` for one epoch (bf16), then ``insvp evaluate``;
6. ``throughput.py``: ours against the release as published, with the tracked speed targets;
7. ``profile_insvp.py``: the prompters' convolutions as ``conv2d`` and as FFTs and one training step part by part,
   in bf16;
8. ``insvp export`` of the quickstart checkpoint to ONNX and ``export_throughput.py``'s predict against evaluate.

Without a GPU it says so and runs the same steps at toy sizes on the CPU (a smoke test; the DDP run on gloo), exiting
0 when they all ran. The exit status is 1 when a step failed (its output is in the report either way). A step whose
optional packages are missing (the export needs ``onnxscript``, the ``export`` extra) is skipped, said so.

Run from the repository root (or anywhere)::

    bash benchmarks/gpu.sh                 # writes gpu-report.txt
    python3 benchmarks/gpu_report.py --out report.txt
"""

from __future__ import annotations

import argparse
import importlib.util
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
sys.path.insert(0, str(ROOT))  # this checkout's insvp_cli
from insvp_cli.runtime.devices import visible_gpus  # noqa: E402

BUDGET_S = 450  # the steps' share of the 8 minutes (the rest: starting Python, checking CUDA, slack)
MIN_STEP_S = 20  # a step that would get less than this is skipped
# the CPU smoke: the same steps at toy sizes, a few minutes on two cores
SMOKE_THROUGHPUT = ("--device", "cpu", "--backbone", "vit_tiny_patch16_224", "--img-size", "64", "--batch", "2",
                    "--warmup", "0", "--steps", "1", "--rounds", "1")
SMOKE_PROFILE = ("--device", "cpu", "--backbone", "vit_tiny_patch16_224", "--img-size", "64", "--batch", "2",
                 "--repeats", "1")


def insvp() -> list[str]:
    """The installed ``insvp`` script, or this checkout's package run as a module (the GPU machine's way)."""
    script = shutil.which("insvp")
    return [script] if script else [sys.executable, "-m", "insvp_cli"]


# step title -> the modules it needs beyond the package's dependencies
NEEDS = {"export to ONNX (checked against PyTorch)": ("onnx", "onnxruntime", "onnxscript")}


def steps(cuda: bool, work: Path) -> list[tuple[str, list[str], int]]:
    """(title, command, timeout in s) of every step, most wanted first; the quickstart's files go under ``work``."""
    run, py = work / "quickstart", sys.executable
    device = "cuda" if cuda else "cpu"
    # the CPU smoke trains on two of the quickstart's five digits: the same steps on two fifths of the images
    quick = ["--recipe", "quickstart", "--set", f"train.device={device}", "--set", "train.epochs=1",
             *([] if cuda else ["--set", "data.classes=[5, 6]"])]
    data = (["--device", "cuda", "--recipe", "cub", "--images", "2000"] if cuda else
            ["--device", "cpu", "--recipe", "quickstart", "--images", "64", "--size", "48x40"])
    ddp = [py, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "insvp_cli", "train",
           *quick, "--out", str(work / "ddp")]
    throughput = ("--device", "cuda", "--rounds", "2") if cuda else SMOKE_THROUGHPUT
    profile = (("--device", "cuda", "--backbone", "vit_base_patch16_224", "--batch", "64", "--precision", "bf16",
                "--repeats", "3") if cuda else SMOKE_PROFILE)
    export = [*insvp(), "export", str(run / "best.pt"), "--format", "onnx", "--out", str(work / "onnx")]
    return [
        ("train images/s, peak memory and syncs of every method of Table 1" + ("" if cuda else " (CPU smoke)"),
         [py, str(BENCH / "train_speed.py"), "--device", device], 240),
        ("the data pipeline beside the model", [py, str(BENCH / "data_throughput.py"), *data], 150),
        (f"DDP: 2 processes on one {'GPU' if cuda else 'CPU'}, one quickstart epoch", ddp, 150),
        ("exact resume: a resumed run and a second run against the first",
         [py, str(BENCH / "resume_check.py"), "--device", device,
          *([] if cuda else ["--shots", "4", "--set", "data.classes=[5, 6]", "--set", "data.num_workers=0"])], 150),
        (f"quickstart: one epoch on {device}", [*insvp(), "train", *quick, "--out", str(run)], 120),
        ("quickstart: evaluate", [*insvp(), "evaluate", str(run / "best.pt"), "--set", f"train.device={device}"], 60),
        ("throughput: ours against the release as published" + ("" if cuda else " (CPU smoke)"),
         [py, str(BENCH / "throughput.py"), *throughput], 200),
        ("the prompters' convolutions and a training step, part by part", [py, str(BENCH / "profile_insvp.py"),
                                                                          *profile], 120),
        ("export to ONNX (checked against PyTorch)", export, 90),
        ("predict against evaluate on 500 digit images", [py, str(BENCH / "export_throughput.py"), "--device", device,
                                                          "--only-predict", "--rounds", "3"], 90),
    ]


def cuda_expected(flag: bool) -> str | None:
    """Why this machine should have a usable GPU (``None``: no reason to think so)."""
    if flag:
        return "--expect-cuda"
    if visible_gpus():
        return f"the NVIDIA driver lists {visible_gpus()} GPU(s)"
    if Path("/dev/nvidiactl").exists():
        return "/dev/nvidiactl exists"
    return None


def cuda_problem() -> str | None:
    """What keeps torch from using the GPU: not only ``torch.cuda.is_available()`` but a kernel run and its result
    read back (float32 and bf16), ``None`` when all is well."""
    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) finds no usable CUDA device "
                "(torch.cuda.is_available() is False: no device, or a driver too old for this build)")
    try:
        x = torch.arange(64, dtype=torch.float32, device="cuda")
        dot = float(x @ x)  # integers below 2**24: exact in float32
        ones = torch.ones(32, 32, dtype=torch.bfloat16, device="cuda")
        product = float((ones @ ones).float().sum())
    except Exception as exc:  # any way a CUDA call fails is the answer
        return f"a CUDA operation failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    if dot != 85344.0 or product != 32.0**3:
        return f"CUDA computed wrong results: 0..63 dotted with itself gave {dot} (85344), a bf16 product {product}"
    return None


def environment(cuda: bool) -> list[str]:
    lines = [f"python {platform.python_version()}, torch {torch.__version__}, {platform.platform()}, "
             f"{os.cpu_count()} CPUs"]
    if cuda:
        props = torch.cuda.get_device_properties(0)
        lines.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, {props.name}, "
                     f"{props.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} device(s)")
    else:
        lines.append("no CUDA device: the CPU smoke of every step follows (toy sizes; its numbers mean nothing)")
    return lines


def run_step(title: str, command: list[str], timeout: float, env: dict[str, str]) -> tuple[str, list[str]]:
    """(exit status, report lines) of one step."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
        code, output = str(proc.returncode), proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = "timeout"
        output = "".join(s.decode() if isinstance(s, bytes) else s for s in (exc.stdout or "", exc.stderr or ""))
    return code, [f"{title}: exit {code}, {time.perf_counter() - start:.0f} s", f"$ {shlex.join(command)}",
                  output.rstrip(), ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-report.txt"), help="the report (default gpu-report.txt)")
    parser.add_argument("--budget", type=float,
                        help=f"seconds for all steps (default: {BUDGET_S} on CUDA, none for the CPU smoke)")
    parser.add_argument("--expect-cuda", action="store_true", help="fail unless CUDA works, whatever the machine says")
    opts = parser.parse_args(argv)
    report = [f"insvp GPU report, {time.strftime('%Y-%m-%d %H:%M:%S')}"]
    expected = cuda_expected(opts.expect_cuda)
    problem = cuda_problem() if expected or torch.cuda.is_available() else None
    if problem:
        report += [f"error: CUDA is expected here ({expected}) but cannot be used: {problem}",
                   "nothing was run; fix the driver or install a torch build for it, then run this again"]
        opts.out.write_text("\n".join(report) + "\n")
        print("\n".join(report), file=sys.stderr)
        return 1
    cuda = expected is not None or torch.cuda.is_available()
    report += [*environment(cuda), ""]
    print("\n".join(report), flush=True)
    budget = opts.budget or (BUDGET_S if cuda else float("inf"))
    failed, deadline = 0, time.monotonic() + budget
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "MPLBACKEND": "Agg"}
    with tempfile.TemporaryDirectory(prefix="insvp-gpu-") as tmp:
        for i, (title, command, timeout) in enumerate(steps(cuda, Path(tmp)), start=1):
            left = deadline - time.monotonic()
            missing = [m for m in NEEDS.get(title, ()) if importlib.util.find_spec(m) is None]
            if missing:
                section = [f"== {i}. {title}: skipped, {', '.join(missing)} not installed here", ""]
            elif left < MIN_STEP_S:
                section = [f"== {i}. {title}: skipped, {left:.0f} s of the {budget:.0f} s budget left", ""]
            else:
                code, lines = run_step(title, command, min(timeout, left), env)
                failed += code != "0"
                section = [f"== {i}. {lines[0]}", *lines[1:]]
            print(section[0], flush=True)
            report += section
    opts.out.write_text("\n".join(report) + "\n")
    print(f"report: {opts.out}" + (f"; {failed} step(s) failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
