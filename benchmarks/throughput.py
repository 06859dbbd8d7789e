"""Training and evaluation throughput and peak memory of InsVP, its baselines and the authors' release as published.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). Rows, all on the same
backbone, batch and synthetic data (random images and labels, fixed seed):

- ``linear``: linear probe (frozen backbone + head);
- ``common-only`` and ``common-only-16``: InsVP with only the common prompt (VPT-deep-like, "prompts only"),
  ``L_p`` of the ``paper`` preset (9) and of the ``release`` preset (16);
- ``insvp-paper`` and ``insvp-release``: our InsVP presets (``G_s`` once per forward, frozen backbone);
- ``release-as-published``: the ``release`` preset run the way the authors' code runs it (docs/method.md §2):
  ``G_s`` recomputed in front of every block, and every parameter left with ``requires_grad=True``
  while AdamW steps only the release's own list (``G_l``, ``G_g``, ``p_c``, head; not ``G_s``), with plain
  ``conv2d`` convolutions (``conv_impl: direct``; ours choose FFT ones where faster). So each
  backward also computes weight gradients for the whole backbone, and because zeroing the gradients
  touches only the optimizer's parameters, those gradients stay allocated and accumulate across steps.

Training is the project's own path: ``build_optimizer`` (AdamW over trainable parameters),
``Schedule``, ``train_one_epoch`` with autocast from ``Precision`` (GradScaler for fp16) and
label-smoothed cross-entropy; Mixup is off (it costs the same in every row). Evaluation is
``evaluate`` (``no_grad`` forward). Both are timed as a whole, ``--steps`` batches at a time, after
``--warmup`` untimed batches before a row's first round.

Each row lives in its own process (started once, model built once) and the rows take turns: every
round runs each row once, alternating the order, and a row's images/s is the best of its rounds, so
that noise from other work on a shared machine does not decide the ratios. On CPU each row uses one
thread unless ``--threads`` says otherwise: when another process holds a core, two threads that wait
for each other at every parallel region run several times slower than one (8x, measured on 2 shared
cores). Peak memory, in MiB:

- CUDA: ``torch.cuda.max_memory_allocated`` (weights, data, gradients, optimizer state, activations);
- CPU: the peak resident set size of the row's process (``ru_maxrss``) minus its size before the row
  was built, i.e. what building and running the row added (weights included).

Training peaks are the largest over the rounds; evaluation peaks are taken in the first round, before
the row's first training step (no gradients or optimizer state yet), because the CPU high-water mark
never goes down.

Run from the repository root::

    python benchmarks/throughput.py                  # CPU: ViT-S/16, 224 px, batch 4, fp32, 1 thread per row
    python benchmarks/throughput.py --device cuda    # ViT-B/16, 224 px, batch 64, bf16 autocast

Progress goes to stderr; stdout ends with the ratio of every row to ``insvp-paper`` and the tracked targets
(:data:`TARGETS`).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field

import timm
import torch
from _models import ONLY_COMMON, build_method, method_config, published_from

from insvp_cli.backbone import create_backbone
from insvp_cli.runtime.backends import run_backends
from insvp_cli.runtime.precision import Precision
from insvp_cli.train.engine import Schedule, build_criterion, build_optimizer, evaluate, train_one_epoch

BASELINE = "insvp-paper"
# (numerator, denominator, metric, bound): issue-tracked targets, checked at the end of the report
TARGETS = (
    ("insvp-release", "release-as-published", "train images/s", ">=", 2.5),
    ("insvp-release", "release-as-published", "train peak memory", "<=", 0.5),
    ("insvp-release", "common-only-16", "train images/s", ">=", 0.85),
    ("insvp-paper", "common-only", "train images/s", ">=", 0.90),
)
# device type -> (backbone, batch, warm-up steps, timed steps); both backbones take 224 px
DEFAULTS = {
    "cpu": ("vit_small_patch16_224", 4, 1, 2),
    "cuda": ("vit_base_patch16_224", 64, 5, 20),
}


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    overrides: tuple[str, ...]
    as_published: bool = False
    compiled: bool = False  # training through torch.compile (train.compile: true)


ROWS = (
    Row("linear", "linear probe", ("method.name=linear",)),
    Row("common-only", "common prompt only (VPT-deep-like)", ("method.preset=paper", *ONLY_COMMON)),
    Row("common-only-16", "common prompt only, L_p 16", ("method.preset=release", *ONLY_COMMON)),
    Row("insvp-paper", "InsVP paper (ours)", ("method.preset=paper",)),
    # G_s once per forward, as the table of benchmarks/README.md measured it (the preset itself now recomputes it
    # per block in training, as the release: specific_per_block, whose cost benchmarks/flops.py states)
    Row("insvp-release", "InsVP release (ours)", ("method.preset=release", "method.specific_per_block=false")),
    # the release's optimizer never sees G_s (docs/method.md §2); its gradients are computed all the same; its
    # convolutions are plain conv2d
    Row("release-as-published", "release as published",
        ("method.preset=release", "method.freeze_specific_prompter=true", "method.conv_impl=direct"),
        as_published=True),
)


# --compile adds these: our presets trained through torch.compile, as `train.compile: true` trains them
COMPILED_ROWS = (
    Row("insvp-paper-compile", "InsVP paper, torch.compile", ("method.preset=paper",), compiled=True),
    Row("insvp-release-compile", "InsVP release, torch.compile",
        ("method.preset=release", "method.specific_per_block=false"), compiled=True),
)


@dataclass(frozen=True)
class Options:
    device: str
    backbone: str
    img_size: int | None  # None: the backbone's own
    batch: int
    warmup: int
    steps: int
    rounds: int
    precision: str
    threads: int
    compile: bool = False

    @property
    def rows(self) -> tuple[Row, ...]:
        return (*ROWS, *COMPILED_ROWS) if self.compile else ROWS


@dataclass
class Result:
    """One row's measurements: images/s of every round (the best counts) and peaks in MiB."""

    row: Row
    img_size: int | str = 0
    prompt_len: int = 0
    stepped: int = 0  # parameters AdamW updates
    with_grad: int = 0  # parameters whose gradients every backward computes
    train: list[float] = field(default_factory=list)
    eval: list[float] = field(default_factory=list)
    train_peak: float = 0.0  # MiB
    eval_peak: float = 0.0  # MiB

    def metrics(self) -> dict[str, float]:
        return {"train images/s": max(self.train), "eval images/s": max(self.eval),
                "train peak memory": self.train_peak, "eval peak memory": self.eval_peak}


# --------------------------------------------------------------------------------------------------
# One row, in its own process


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


class Bench:
    """A row's model, optimizer and data, ready to be measured round after round."""

    def __init__(self, row: Row, opts: Options):
        self.rss_base = _peak_rss_mib()
        torch.set_num_threads(opts.threads)
        self.device = torch.device(opts.device)
        # as insvp train runs: TF32 and cuDNN's benchmark mode on CUDA (this process lives for this row alone)
        run_backends(self.device, tf32=True, deterministic=False).__enter__()
        self.row, self.opts = row, opts
        size = [f"backbone.img_size={opts.img_size}"] if opts.img_size else []
        cfg = method_config(opts.backbone, *size, "train.mixup=0", "train.cutmix=0",
                            f"train.precision={opts.precision}", *row.overrides)
        backbone = create_backbone(cfg.backbone)
        height, width = backbone.patch_embed.img_size
        model = build_method(cfg, backbone)
        if row.as_published:
            model = published_from(model)
        self.model = model.to(self.device)
        self.optimizer = build_optimizer(self.model, cfg.train)  # what `requires_grad` selects now: ours
        if row.as_published:
            self.model.requires_grad_(True)  # as the release leaves it: gradients for all, steps for its list
        self.schedule = Schedule(cfg.train, steps_per_epoch=opts.warmup + opts.steps)
        self.schedule.apply(self.optimizer)
        self.criterion = build_criterion(cfg.train, None)
        # the compiled module shares the model's parameters; its first (warm-up) steps compile
        self.train_model = torch.compile(self.model) if row.compiled else self.model
        self.precision = Precision.resolve(cfg.train.precision, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision.needs_scaler else None
        generator = torch.Generator().manual_seed(0)  # the same images and labels in every row
        # (B, 3, H, W) normalised-looking images; labels over the head's classes
        images = torch.randn(opts.batch, 3, height, width, generator=generator)
        labels = torch.randint(0, self.model.num_classes, (opts.batch,), generator=generator)
        self.batch = (images.to(self.device), labels.to(self.device))
        self.eval_peak: float | None = None
        self.warm = False
        self.info = {
            "img_size": height if height == width else f"{height}x{width}",
            "prompt_len": getattr(self.model.cfg, "prompt_len", 0),
            "stepped": sum(p.numel() for group in self.optimizer.param_groups for p in group["params"]),
            "with_grad": sum(p.numel() for p in self.model.parameters() if p.requires_grad),
        }

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _start_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def _peak(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return _peak_rss_mib() - self.rss_base

    def _timed(self, run, steps: int) -> float:
        """Images/s of ``run`` over ``steps`` batches."""
        self._sync()
        start = time.perf_counter()
        run([self.batch] * steps)
        self._sync()
        return steps * self.opts.batch / (time.perf_counter() - start)

    def _check_backbone_grads(self) -> None:
        """Only the release as published may have computed weight gradients for the backbone."""
        with_grad = sum(p.grad is not None for p in self.model.backbone.parameters())
        expected = len(list(self.model.backbone.parameters())) if self.row.as_published else 0
        if with_grad != expected:
            raise RuntimeError(f"{self.row.key}: {with_grad} backbone tensors have gradients, expected {expected}")

    def round(self) -> dict[str, float]:
        """Evaluation, then training: images/s over ``steps`` timed batches each, and the peaks (MiB)."""
        def run_eval(loader):
            evaluate(self.model, loader, device=self.device, precision=self.precision)

        def run_train(loader):
            train_one_epoch(self.train_model, loader, self.optimizer, self.schedule, self.criterion,
                            device=self.device, precision=self.precision, scaler=self.scaler)

        # Warm-up (allocator, kernel selection, lazy init) only before the row's first round: its
        # process and model stay alive between rounds, so later rounds start warm.
        warmup, self.warm = (0 if self.warm else self.opts.warmup), True
        # evaluation first: its peak is read before the row's first training step (see the module docstring)
        run_eval([self.batch] * warmup)
        self._start_peak()
        eval_speed = self._timed(run_eval, self.opts.steps)
        if self.eval_peak is None:
            self.eval_peak = self._peak()
        run_train([self.batch] * warmup)
        self._start_peak()
        train_speed = self._timed(run_train, self.opts.steps)
        self._check_backbone_grads()
        return {"eval": eval_speed, "train": train_speed, "eval_peak": self.eval_peak, "train_peak": self._peak()}


def _serve(conn, row: Row, opts: Options) -> None:
    """Build the row, report its sizes, then measure one round per request until told to stop (``None``)."""
    try:
        torch.manual_seed(0)
        bench = Bench(row, opts)
        conn.send(("ok", bench.info))
        while conn.recv() is not None:
            conn.send(("ok", bench.round()))
    except Exception:  # the parent prints it and stops every row
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class Worker:
    """The parent's handle on one row's process."""

    def __init__(self, ctx, row: Row, opts: Options):
        self.row = row
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, row, opts), name=f"bench-{row.key}", daemon=True)
        self.process.start()
        child.close()

    def receive(self) -> dict[str, float]:
        try:
            status, payload = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"{self.row.key}: its process died (exit code {self.process.exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"{self.row.key} failed:\n{payload}")
        return payload

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # the process may already be gone
            self.conn.send(None)
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


# --------------------------------------------------------------------------------------------------
# The parent: start the rows, take turns, report


def measure(opts: Options) -> list[Result]:
    # A fresh process per row: its own memory high-water mark and no state shared with other rows. The fork
    # server imports torch, timm and insvp_cli once, so each row starts in a second rather than in ten.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "timm", "insvp_cli.train.engine", "insvp_cli.methods", "insvp_cli.backbone"])
    workers = [Worker(ctx, row, opts) for row in opts.rows]
    results = {w.row.key: Result(w.row) for w in workers}
    try:
        for w in workers:
            info = w.receive()
            r = results[w.row.key]
            r.img_size, r.prompt_len, r.stepped, r.with_grad = (info[k] for k in ("img_size", "prompt_len", "stepped",
                                                                                   "with_grad"))
        _progress(f"{len(workers)} rows built")
        for i in range(opts.rounds):
            for w in workers if i % 2 == 0 else workers[::-1]:  # alternate the order against drifting load
                w.conn.send("round")
                m = w.receive()
                _progress(f"round {i + 1}/{opts.rounds} {w.row.key}: train {m['train']:.2f}, eval {m['eval']:.2f} "
                          f"images/s")
                r = results[w.row.key]
                r.train.append(m["train"])
                r.eval.append(m["eval"])
                r.train_peak = max(r.train_peak, m["train_peak"])
                r.eval_peak = max(r.eval_peak, m["eval_peak"])
    finally:
        for w in workers:
            w.stop()
    return [results[row.key] for row in opts.rows]


_START = time.perf_counter()


def _progress(message: str) -> None:
    """A line on stderr, so that stdout holds only the results."""
    print(f"[{time.perf_counter() - _START:5.0f} s] {message}", file=sys.stderr, flush=True)


def report(results: list[Result], opts: Options) -> str:
    memory = "CUDA max allocated" if opts.device.startswith("cuda") else "CPU peak RSS of the row's process"
    header = (f"{'row':<21} {'description':<35} {'L_p':>3} {'stepped':>8} {'w/ grad':>8} {'train img/s':>11} "
              f"{'eval img/s':>10} {'train MiB':>9} {'eval MiB':>8}")
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.row.key:<21} {r.row.label:<35} {r.prompt_len:>3} {r.stepped / 1e6:>7.3f}M "
                     f"{r.with_grad / 1e6:>7.2f}M {max(r.train):>11.2f} {max(r.eval):>10.2f} "
                     f"{r.train_peak:>9.0f} {r.eval_peak:>8.0f}")
    lines += ["", f"images/s: best of {opts.rounds} rounds of {opts.steps} timed steps (after {opts.warmup} warm-up); "
              f"MiB: {memory}; images/s per round (train | eval):"]
    for r in results:
        lines.append(f"  {r.row.key:<21} " + " ".join(f"{v:.2f}" for v in r.train) + " | "
                     + " ".join(f"{v:.2f}" for v in r.eval))
    base = next(r for r in results if r.row.key == BASELINE).metrics()
    lines.append("")
    for r in results:
        if r.row.key == BASELINE:
            continue
        for name, value in r.metrics().items():
            lines.append(f"{r.row.key} / {BASELINE} {name} = {value / base[name]:.2f}")
    by_key = {r.row.key: r.metrics() for r in results}
    lines += ["", "targets:"]
    for top, bottom, name, op, bound in TARGETS:
        if top in by_key and bottom in by_key:
            ratio = by_key[top][name] / by_key[bottom][name]
            met = ratio >= bound if op == ">=" else ratio <= bound
            lines.append(f"{top} / {bottom} {name} = {ratio:.2f} (target {op} {bound}): {'met' if met else 'MISSED'}")
    return "\n".join(lines)


def _device_type(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device is available; use cpu or auto")
    return name


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda or cuda:N")
    parser.add_argument("--backbone", help="timm ViT name (default: vit_small_patch16_224 on CPU, "
                        "vit_base_patch16_224 on CUDA)")
    parser.add_argument("--img-size", type=int, help="input resolution (default: the backbone's, 224 for both)")
    parser.add_argument("--batch", type=int, help="batch size (default: 4 on CPU, 64 on CUDA)")
    parser.add_argument("--warmup", type=int,
                        help="untimed steps of each phase before a row's first round (default: 1 CPU, 5 CUDA)")
    parser.add_argument("--steps", type=int, help="timed steps per phase and round (default: 2 CPU, 20 CUDA)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over all rows; images/s is the best (default 2)")
    parser.add_argument("--threads", type=int, help="CPU threads per row (default: 1 on CPU, torch's default on CUDA)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="autocast dtype (auto: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--compile", action="store_true",
                        help="add rows of our presets trained through torch.compile (train.compile: true)")
    args = parser.parse_args(argv)
    device = _device_type(args.device)
    backbone, batch, warmup, steps = DEFAULTS[torch.device(device).type]
    opts = Options(device=device, backbone=args.backbone or backbone, img_size=args.img_size,
                   batch=args.batch or batch, warmup=warmup if args.warmup is None else args.warmup,
                   steps=args.steps or steps, rounds=args.rounds, precision=args.precision,
                   threads=args.threads or (1 if device == "cpu" else torch.get_num_threads()), compile=args.compile)
    if min(opts.batch, opts.steps, opts.rounds, opts.img_size or 1) < 1 or opts.warmup < 0:
        parser.error("--batch, --steps, --rounds and --img-size must be positive, --warmup not negative")
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    start = time.perf_counter()
    try:
        results = measure(opts)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    precision = Precision.resolve(opts.precision, torch.device(opts.device)).dtype or torch.float32
    where = f"{opts.device} ({torch.cuda.get_device_name(opts.device)})" if opts.device.startswith("cuda") else "cpu"
    print(f"{opts.backbone} @ {results[0].img_size} px, batch {opts.batch}, {where}, "
          f"{str(precision).removeprefix('torch.')}, {opts.threads} thread{'s' if opts.threads > 1 else ''} per row; "
          f"torch {torch.__version__}, timm {timm.__version__}; measured in {time.perf_counter() - start:.0f} s")
    print()
    print(report(results, opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
