"""Training images/s, peak memory and host syncs per step of every method of the paper's Table 1, as ``insvp train``
trains them.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). One row per row of Table 1 (its method
with the row's ``method.*`` overrides, e.g. ``Partial-1``), plus InsVP trained through ``torch.compile``
(``train.compile: true``) and InsVP's ``release`` preset as it trains (``G_s`` in every prompted block). Every row runs
the project's own step (``train_one_epoch``: AdamW over the trainable tensors, the run's autocast, the backends
``insvp train`` sets: TF32 and cuDNN's benchmark mode on CUDA) on synthetic images already on the device, so the
numbers are the model's alone (``data_throughput.py`` measures the loader beside them). Mixup is off (it costs the same
in every row).

On CUDA (default ViT-B/16, 224 px, batch 64, bf16) each row also counts the host's waits for the GPU in its timed
steps (``torch.cuda.set_sync_debug_mode``): the loop reads back once per epoch and once every ``SYNC_EVERY`` steps, so
a method with more has a sync of its own. Rows run one after another in this process (peak memory is reset between
them); a row that fails is reported and the others still run. Run from the repository root::

    python benchmarks/train_speed.py                       # CUDA if available, else a CPU smoke at toy sizes
    python benchmarks/train_speed.py --device cuda --only insvp,vpt
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from functools import partial

import torch
from _models import method_config

from insvp_cli.experiments.reproduce.tables import TABLES
from insvp_cli.methods.build import build_model
from insvp_cli.resolve.needs import bind_requirements
from insvp_cli.runtime.backends import run_backends
from insvp_cli.runtime.precision import Precision
from insvp_cli.train.engine import Schedule, build_criterion, build_optimizer, train_one_epoch
from insvp_cli.train.loop import CompiledForFullBatches

NUM_CLASSES = 100  # CIFAR-100's, whose built-in hierarchy gives TransHP its 20 coarse classes
# device type -> (backbone, image size, batch, warm-up steps, timed steps, timm keyword arguments); the CPU's is a
# smoke test: two blocks of ViT-Ti/16 at 64 px
DEFAULTS = {"cuda": ("vit_base_patch16_224", 224, 64, 3, 10, "{}"),
            "cpu": ("vit_tiny_patch16_224", 64, 2, 1, 1, "{depth: 2}")}
# a method's settings that are not about its cost: no download of AlexNet's weights
SETS = {"sidetune": ("method.side_weights=none",)}


@dataclass(frozen=True)
class Row:
    label: str
    overrides: tuple[str, ...]
    compiled: bool = False


def table1_rows(compiled: bool = True) -> list[Row]:
    """Table 1's rows in its order, each with its ``method.*`` overrides (not its protocol: the batch is fixed), then
    InsVP's ``release`` preset and InsVP through ``torch.compile`` (with ``compiled``; last, as the slowest to
    start)."""
    rows: dict[str, Row] = {}
    for cell in TABLES.get("table1").cells:
        kept = tuple(o for o in cell.run.overrides if o.startswith("method.") and not o.startswith("method.protocol"))
        rows.setdefault(cell.row, Row(cell.row, (*kept, *SETS.get(cell.method, ()))))
    insvp = rows["InsVP"].overrides
    extra = [Row("InsVP, torch.compile", insvp, compiled=True)] if compiled else []
    return [*rows.values(), Row("InsVP release preset", (*insvp, "method.preset=release")), *extra]


def measure(row: Row, opts: argparse.Namespace) -> dict[str, float]:
    """One row: train images/s over the timed steps, peak memory (MiB, CUDA) and host syncs per timed step (CUDA)."""
    device = torch.device(opts.device)
    torch.manual_seed(0)
    cfg = bind_requirements(method_config(opts.backbone, f"backbone.img_size={opts.img_size}",
                                          f"backbone.kwargs={opts.kwargs}", "data.name=cifar100",
                                          "train.mixup=0", "train.cutmix=0", f"train.precision={opts.precision}",
                                          *row.overrides))
    model = build_model(cfg, NUM_CLASSES).to(device)
    optimizer = build_optimizer(model, cfg.train)
    schedule = Schedule(cfg.train, steps_per_epoch=opts.warmup + opts.steps)
    precision = Precision.resolve(cfg.train.precision, device)
    trained = CompiledForFullBatches(model) if row.compiled else model
    generator = torch.Generator().manual_seed(0)
    batch = (torch.randn(opts.batch, 3, opts.img_size, opts.img_size, generator=generator).to(device),
             torch.randint(0, NUM_CLASSES, (opts.batch,), generator=generator).to(device))

    criterion = partial(model.loss, criterion=build_criterion(cfg.train, None))  # with auxiliary terms, as fit

    def epoch(steps: int) -> None:
        train_one_epoch(trained, [batch] * steps, optimizer, schedule, criterion, device=device, precision=precision,
                        scaler=None)

    cuda = device.type == "cuda"
    with run_backends(device, tf32=cfg.train.tf32, deterministic=False):
        epoch(opts.warmup)  # allocator, cuDNN's choices, compilation
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with warnings.catch_warnings(record=True) as syncs:
            warnings.simplefilter("always")
            if cuda:
                torch.cuda.set_sync_debug_mode("warn")
            start = time.perf_counter()
            try:
                epoch(opts.steps)
                if cuda:
                    torch.cuda.synchronize()
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode("default")
            seconds = time.perf_counter() - start
    waits = sum("synchroniz" in str(w.message) for w in syncs)
    return {"images/s": opts.steps * opts.batch / seconds,
            "peak MiB": torch.cuda.max_memory_allocated() / 2**20 if cuda else math.nan,  # nan: not measured
            "syncs/step": waits / opts.steps if cuda else math.nan}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbone", help="timm model (default: ViT-B/16 on CUDA, a tiny ViT on the CPU)")
    parser.add_argument("--img-size", type=int)
    parser.add_argument("--kwargs", help="timm keyword arguments of the backbone, e.g. '{depth: 2}'")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--only", help="comma-separated row labels or method names (default: every row)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="the torch.compile row (default: on CUDA only; on the CPU it needs a C++ compiler)")
    opts = parser.parse_args(argv)
    defaults = DEFAULTS[torch.device(opts.device).type]
    for name, value in zip(("backbone", "img_size", "batch", "warmup", "steps", "kwargs"), defaults, strict=True):
        if getattr(opts, name) is None:
            setattr(opts, name, value)
    rows = table1_rows(opts.device.startswith("cuda") if opts.compile is None else opts.compile)
    if opts.only:
        wanted = {w.strip() for w in opts.only.split(",")}
        rows = [r for r in rows if r.label in wanted or any(o == f"method.name={w}" for w in wanted
                                                              for o in r.overrides)]
    print(f"{opts.backbone} {opts.kwargs} @ {opts.img_size} px, batch {opts.batch}, {opts.device}, {opts.precision}; "
          f"torch {torch.__version__}; {opts.steps} timed steps after {opts.warmup}", flush=True)
    print(f"{'row':<24} {'train img/s':>12} {'peak MiB':>9} {'syncs/step':>10}", flush=True)
    failed = 0
    for row in rows:
        try:
            m = measure(row, opts)
            print(f"{row.label:<24} {m['images/s']:>12.1f} {_cell(m['peak MiB'], 0):>9} "
                  f"{_cell(m['syncs/step'], 2):>10}", flush=True)
        except Exception as exc:  # one row's failure is reported; the others are still measured
            failed += 1
            print(f"{row.label:<24} failed: {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc(file=sys.stderr)
        if opts.device.startswith("cuda"):
            torch.cuda.empty_cache()
    return 1 if failed else 0


def _cell(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


if __name__ == "__main__":
    sys.exit(main())
