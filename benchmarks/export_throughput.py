"""Deployment speed: ONNX Runtime against PyTorch eager on the CPU, and ``insvp predict`` against ``insvp evaluate``.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). Two comparisons, each
measured side by side in one run: the two sides take turns over ``--rounds`` rounds (order reversed
every other round) and a side's images/s is its best round, so a burst of load from other work does not
decide a ratio.

1. ``insvp export --format onnx`` run by ONNX Runtime (CPU execution provider) against the same model in
   PyTorch eager (``torch.inference_mode``, float32), on the same random batch, for

   - the quickstart model: ``recipes/quickstart.yaml`` with its shipped backbone
     (``asset:quickstart-vit-mnist04.safetensors``: 32 px, patch 4, width 96, depth 4), InsVP ``paper``
     with ``L_p`` 4, 5 classes;
   - ViT-B/16 at 224 px with InsVP (default preset), random weights, 47 classes.

   The ONNX file is the command's own output (``export_model``, checked against PyTorch to 1e-4). Both
   engines get ``--threads`` intra-op threads (default 1: on a machine whose cores other jobs share, two
   threads that wait for each other at every parallel region run several times slower than one).

2. ``insvp_cli.predict`` against ``evaluate_checkpoint`` (what ``insvp predict`` and ``insvp evaluate``
   run) on the same files: the 500 MNIST test digits 5-9 of ``mnist5k`` written as PNGs into an
   ``imagefolder``, the quickstart model (random prompts: speed does not depend on them), the same device,
   batch size and workers (the checkpoint's: 64 and 0). Each side times its loop (reading, transform,
   model; predict also writes its CSV), not the model loading. Target: predict at least 0.9 x evaluate.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/export_throughput.py

Progress goes to stderr; stdout ends with the three ratios, and the exit status is 1 when predict misses
its target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _models import NUM_CLASSES, method_config

from insvp_cli.config.schema import Config
from insvp_cli.data.splits import load_splits
from insvp_cli.methods.build import build_model
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.checkpoint import Checkpoint
from insvp_cli.runs.trained import load_model
from insvp_cli.use.evaluate import evaluate_checkpoint
from insvp_cli.use.export import export_model
from insvp_cli.use.predict import predict

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
PREDICT_TARGET = 0.9  # predict / evaluate images/s
_START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _START:5.0f} s] {message}", file=sys.stderr, flush=True)


def save_checkpoint(cfg: Config, classes: list[str], path: Path) -> Path:
    """A checkpoint of ``cfg``'s model as built (random prompts and head), as ``insvp train`` would write it."""
    Checkpoint.of(build_model(cfg, len(classes)), cfg, classes, {}, 0).save(path)
    return path


def images_per_s(run: Callable[[], object], images: int, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return images * steps / (time.perf_counter() - start)


def side_by_side(sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each side's measurement per round, the sides taking turns (order reversed every other round)."""
    results: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            results[name].append(sides[name]())
            log(f"round {r + 1}/{rounds} {name}: {results[name][-1]:.1f} images/s")
    return results


def onnx_against_eager(label: str, cfg: Config, classes: int, batch: int, steps: int, opts, tmp: Path) -> dict:
    log(f"{label}: exporting to ONNX (checked against PyTorch)")
    checkpoint = save_checkpoint(cfg, [str(i) for i in range(classes)], tmp / f"{label}.pt")
    result = export_model(checkpoint, "onnx", tmp / f"{label}-onnx")
    model = load_model(checkpoint)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = opts.threads, 1
    session = ort.InferenceSession(str(result.out / "model.onnx"), options, providers=["CPUExecutionProvider"])
    height, width = model.backbone.patch_embed.img_size
    x = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
    feed = {"image": x.numpy()}

    def eager() -> torch.Tensor:
        with torch.inference_mode():
            return model(x)

    eager(), session.run(None, feed)  # warm-up: allocations, ONNX Runtime's first-run graph work
    rounds = side_by_side({"pytorch": lambda: images_per_s(eager, batch, steps),
                           "onnxruntime": lambda: images_per_s(lambda: session.run(None, feed), batch, steps)},
                          opts.rounds)
    return {"label": label, "px": height, "batch": batch, "rounds": rounds, "diff": result.max_diff}


def predict_against_evaluate(opts, tmp: Path) -> dict:
    """The quickstart model on the 500 test digits 5-9 as PNG files: predict's and evaluate's loop images/s."""
    log("writing 500 MNIST test digits as PNG files")
    digits = load_splits(resolve_config(QUICKSTART).data)
    root = tmp / "digits"
    for split, n in (("train", 2), ("test", None)):  # imagefolder needs a train/ folder; only test/ is read
        for label, name in enumerate(digits.classes):
            (root / split / name).mkdir(parents=True)
            for i in np.flatnonzero(digits.test.labels == label)[:n]:
                digits.test[int(i)][0].save(root / split / name / f"{int(i):04d}.png")
    cfg = resolve_config(QUICKSTART, ["data.name=imagefolder", f"data.root={root}", "data.classes=null",
                                      f"train.device={opts.device}"])
    checkpoint = save_checkpoint(cfg, list(digits.classes), tmp / "quickstart-digits.pt")
    images = len(list((root / "test").glob("*/*.png")))

    def evaluate() -> float:
        result = evaluate_checkpoint(checkpoint, "test")
        assert result["images"] == images
        return result["images_per_s"]

    def run_predict() -> float:
        result = predict(checkpoint, [root / "test"], out=tmp / "preds.csv", device=opts.device)
        assert result.images == images and not result.skipped
        return result.images_per_s

    rounds = side_by_side({"evaluate": evaluate, "predict": run_predict}, opts.rounds)
    return {"images": images, "batch": cfg.data.batch_size, "workers": cfg.data.num_workers, "rounds": rounds}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each engine (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per comparison; images/s is the best (3)")
    parser.add_argument("--quickstart-batch", type=int, default=64, help="batch of the quickstart model (64)")
    parser.add_argument("--quickstart-steps", type=int, default=10, help="timed batches per round (10)")
    parser.add_argument("--vitb-batch", type=int, default=4, help="batch of the ViT-B/16 model (4)")
    parser.add_argument("--vitb-steps", type=int, default=4, help="timed batches per round (4)")
    parser.add_argument("--device", default="cpu", help="device of predict / evaluate: cpu, cuda or cuda:N (cpu)")
    parser.add_argument("--only-predict", action="store_true", help="only predict against evaluate (no ONNX Runtime)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    torch.set_num_threads(opts.threads)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        exported = [] if opts.only_predict else [
            onnx_against_eager("quickstart", resolve_config(QUICKSTART), 5, opts.quickstart_batch,
                               opts.quickstart_steps, opts, tmp),
            onnx_against_eager("vit-b16-insvp", method_config("vit_base_patch16_224"), NUM_CLASSES, opts.vitb_batch,
                               opts.vitb_steps, opts, tmp),
        ]
        served = predict_against_evaluate(opts, tmp)

    if exported:
        print(f"ONNX Runtime {ort.__version__} against PyTorch {torch.__version__} eager, CPU, {opts.threads} "
              f"thread(s), best of {opts.rounds} rounds")
        print(f"{'model':15} {'px':>4} {'batch':>5} {'pytorch img/s':>14} {'onnxruntime img/s':>18} {'ratio':>6} "
              f"{'max |diff|':>10}")
    ratios = {}
    for row in exported:
        best = {name: max(values) for name, values in row["rounds"].items()}
        ratios[row["label"]] = best["onnxruntime"] / best["pytorch"]
        print(f"{row['label']:15} {row['px']:>4} {row['batch']:>5} {best['pytorch']:>14.1f} "
              f"{best['onnxruntime']:>18.1f} {ratios[row['label']]:>6.2f} {row['diff']:>10.1e}")
    for row in exported:
        for name, values in row["rounds"].items():
            print(f"  {row['label']} {name} per round: {' '.join(f'{v:.1f}' for v in values)}")
    evaluate, predicted = (max(served["rounds"][k]) for k in ("evaluate", "predict"))
    print()
    print(f"insvp predict against insvp evaluate: {served['images']} PNG digits, quickstart model, {opts.device}, "
          f"batch {served['batch']}, {served['workers']} workers, best of {opts.rounds} rounds")
    for name in ("evaluate", "predict"):
        values = served["rounds"][name]
        print(f"  {name:8} {max(values):7.1f} images/s (per round: {' '.join(f'{v:.1f}' for v in values)})")
    print()
    for label, ratio in ratios.items():
        print(f"onnxruntime / pytorch images/s, {label} = {ratio:.2f}")
    ratio = predicted / evaluate
    print(f"predict / evaluate images/s = {ratio:.2f} (target >= {PREDICT_TARGET})")
    return 0 if ratio >= PREDICT_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
