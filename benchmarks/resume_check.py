"""Does a resumed run replay the uninterrupted one on this device? Measured, with and without
``train.deterministic``.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). The quickstart recipe (InsVP, a 32 px
ViT), with augmentation, Mixup/CutMix, dropout and 2 loader workers, trained three times per setting: once whole, once
more whole (the device's own run-to-run noise), and once interrupted after its first epoch and resumed. Each line
says whether the metric rows and the trained weights (``last.pt``) are bit-identical to the first run's, else the
largest difference. Run from the repository root::

    python benchmarks/resume_check.py                  # CUDA if available, else the CPU
    python benchmarks/resume_check.py --device cpu --epochs 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import _models  # noqa: F401  (this checkout's insvp_cli first on sys.path)
import torch

from insvp_cli.common.errors import RunInterrupted
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.train.loop import fit


def _rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if "seconds" not in k and "per_s" not in k} for row in rows]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["state_dict"]


def compare(reference: Path, other: Path) -> str:
    """``identical``, or what differs and by how much."""
    a, b = _weights(reference), _weights(other)
    largest = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    same_rows = _rows(reference) == _rows(other)
    if same_rows and largest == 0:
        return "identical (metrics and weights, bit for bit)"
    losses = [(x["train_loss"], y["train_loss"]) for x, y in zip(_rows(reference), _rows(other), strict=True)]
    return (f"differ: weights by at most {largest:.3g}; last train loss {losses[-1][0]:.6f} against "
            f"{losses[-1][1]:.6f}{'' if not same_rows else ' (rows equal)'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--shots", type=int, default=100, help="training images per class (default 100)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="insvp-resume-") as tmp:
        for deterministic in (False, True):
            cfg = resolve_config("quickstart", [
                f"train.device={opts.device}", f"train.epochs={opts.epochs}", f"data.shots={opts.shots}",
                "data.num_workers=2", "data.augment=true", "train.mixup=0.8", "train.cutmix=1.0",
                "method.dropout=0.1", f"train.deterministic={str(deterministic).lower()}", *opts.set])
            if not deterministic:
                print(f"quickstart recipe, {opts.epochs} epochs, {opts.shots} images per class, {cfg.data.num_workers} "
                      f"workers, augmentation, Mixup, dropout; {opts.device}, torch {torch.__version__}", flush=True)
            runs = Path(tmp) / str(deterministic)

            def interrupt(row: dict) -> None:
                if row["epoch"] == 1:
                    raise KeyboardInterrupt

            fit(cfg, runs / "whole", console=_quiet())
            fit(cfg, runs / "again", console=_quiet())
            try:
                fit(cfg, runs / "resumed", console=_quiet(), on_epoch=interrupt)
            except RunInterrupted:
                fit(cfg, runs / "resumed", console=_quiet())
            print(f"train.deterministic: {str(deterministic).lower()}", flush=True)
            print(f"  the same run again:         {compare(runs / 'whole', runs / 'again')}", flush=True)
            print(f"  interrupted after epoch 1:  {compare(runs / 'whole', runs / 'resumed')}", flush=True)
    return 0


def _quiet():
    from io import StringIO

    from rich.console import Console

    return Console(file=StringIO())


if __name__ == "__main__":
    sys.exit(main())
