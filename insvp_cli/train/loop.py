"""``fit``: a whole run, from a resolved config to ``summary.json``; and ``evaluate_checkpoint``.

Run folder layout (every write atomic: a temp file beside it, then a rename):

- ``config.yaml``   the resolved config, written before training starts
- ``metrics.jsonl`` one row per finished epoch (loss, lr, accuracies, throughput)
- ``best.pt``       trainable weights at the best validation accuracy (+ config, metrics)
- ``last.pt``       trainable weights after the last finished epoch
- ``resume.pt``     optimizer, scheduler, scaler, RNG, best-so-far and the metric rows: what ``--resume`` needs
- ``summary.json``  the final result: validation-selected epoch and its test accuracy (exists = finished;
  ``fit(final_test=False)``, a run that must not see the test split such as a sweep trial, has no ``test_acc``)
- ``.lock``         held while a process trains in the folder; a second one is refused

Model selection is on the validation split; test accuracy is reported at the selected epoch. With
``train.test_every_epoch`` the per-epoch test curve is logged as well, and the release's protocol
("best test accuracy over epochs", selected on the test set) is reported beside ours, labelled as such.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbone import data_config
from ..common.atomic import atomic_save, atomic_write_text
from ..common.errors import ConfigError, RunInterrupted, TrainingDiverged, UsageError
from ..config.overrides import flatten
from ..config.schema import Config
from ..data.base import Splits
from ..data.loaders import ImageLoader, Loaders, build_loaders, pop_bad_images
from ..data.splits import build_splits
from ..methods.base import Method, TrainingData
from ..methods.build import build_backbone, build_model
from ..resolve.needs import bind_requirements, coarse_labels
from ..runs.checkpoint import make_checkpoint, make_resume, read_resume
from ..runs.folder import CONFIG, RESUME, SUMMARY, check_resumable, default_run_dir
from ..runs.lock import RunLock
from ..runs.metrics import METRICS, read_metrics
from ..runtime.devices import resolve_device
from ..runtime.distributed import DistInfo, init_distributed, shutdown_distributed
from ..runtime.precision import Precision
from .engine import (
    StepReport,
    build_criterion,
    build_mixup,
    build_optimizer,
    build_scheduler,
    evaluate,
    train_one_epoch,
)
from .loggers import MetricLoggers, check_loggers
from .progress import RunProgress


def seed_everything(seed: int) -> None:
    """Seed every RNG. Called at the start of every epoch with ``seed + epoch``, so a resumed run replays
    exactly the random numbers (dropout, augmentation, Mixup) of the uninterrupted one."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class BestSoFar:
    """The validation-selected epoch; its weights are kept in memory on every rank (no file race)."""

    epoch: int = -1
    val_acc: float = -1.0
    state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val_acc: float, model: Method) -> bool:
        if val_acc > self.val_acc:  # ties keep the earlier epoch
            self.epoch, self.val_acc = epoch, val_acc
            self.state = {k: v.detach().cpu().clone() for k, v in model.trainable_state_dict().items()}
            return True
        return False


@dataclass
class Run:
    """Everything one training run holds: what ``fit`` builds once and every step of it reads.

    Attributes:
        cfg: the resolved config.
        run_dir: the run folder.
        model: the method (not wrapped in DDP).
        splits, loaders: the data.
        device, precision, dist: where and how it runs.
        optimizer, scheduler, scaler: the optimisation state (``scaler`` for fp16 only).
        best: the validation-selected epoch so far.
        rows: the metric rows of the finished epochs (also inside ``resume.pt``).
        coarse_labels: the coarse class of each class, for methods that need a hierarchy (else ``None``).
    """

    cfg: Config
    run_dir: Path
    model: Method
    splits: Splits
    loaders: Loaders
    device: torch.device
    precision: Precision
    dist: DistInfo
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    best: BestSoFar = field(default_factory=BestSoFar)
    rows: list[dict[str, Any]] = field(default_factory=list)
    coarse_labels: list[int] | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.splits.classes)

    @property
    def epochs_done(self) -> int:
        return self.rows[-1]["epoch"] if self.rows else 0

    def training_data(self) -> TrainingData:
        """The training split with the evaluation transform (and, for methods that ask, with its own augmenting
        transform), for the methods' data hooks."""
        def loader(augmented: bool = False) -> ImageLoader:
            train = self.splits.train
            dataset = train if augmented else train.with_transform(self.splits.test.transform)
            return ImageLoader(dataset, batch_size=self.cfg.data.batch_size, shuffle=False,
                               num_workers=self.cfg.data.num_workers, on_bad_image=self.cfg.data.on_bad_image)

        return TrainingData(loader, self.classes, self.device, self.coarse_labels, lambda: loader(augmented=True))


def fit(cfg: Config, run_dir: Path | None = None, *, console=None, final_test: bool = True,
        on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming it if it holds a ``resume.pt``); return the summary.

    Works in one process or under ``torchrun`` (one process per device; DDP; rank 0 writes and holds the
    run folder's lock).

    Args:
        cfg: the resolved config.
        run_dir: the run folder (default: ``output_dir/run_name``).
        console: where progress goes (default: stderr).
        final_test: evaluate the test split at the selected epoch. ``False`` for a run that must never see the
            test split (a sweep trial): ``summary.json`` then has no ``test_acc``.
        on_epoch: called with each epoch's metric row after it is saved (e.g. to report to a pruner; it
            may raise to stop the run, which stays resumable).

    Raises:
        UsageError: the method needs something the data does not provide (checked first, see
            :func:`~insvp_cli.resolve.needs.bind_requirements`), the folder is locked by another process, or it
            holds something else than this run.
        TrainingDiverged: a non-finite loss; the message says what was kept.
        RunInterrupted: Ctrl-C; the run resumes from its last finished epoch.
    """
    if not final_test and cfg.train.test_every_epoch:
        raise UsageError("train.test_every_epoch: true evaluates the test split, which this run must not see")
    cfg = bind_requirements(cfg)
    check_loggers(cfg.train.loggers)  # a missing extra stops the run before any work
    run_dir = run_dir or default_run_dir(cfg)
    dist_info = init_distributed("cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu")
    try:
        with RunLock(run_dir, enabled=dist_info.is_main):
            return _fit(cfg, run_dir, dist_info, console, final_test, on_epoch)
    except KeyboardInterrupt as exc:
        raise RunInterrupted(run_dir) from exc
    finally:
        shutdown_distributed(dist_info)


def _fit(cfg: Config, run_dir: Path, dist_info: DistInfo, console, final_test: bool,
         on_epoch: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    changes = check_resumable(run_dir, cfg)  # compare, reproduce and sweep resume their folders through here too
    run = _build_run(cfg, run_dir, dist_info)
    resumed = _restore(run)
    if not resumed:
        run.model.prepare(run.training_data())
    if dist_info.is_main:
        atomic_write_text(cfg.to_yaml(), run_dir / CONFIG)
    mixup = build_mixup(cfg.train, len(run.classes))
    criterion = partial(run.model.loss, criterion=build_criterion(cfg.train, mixup))
    train_model: nn.Module = run.model
    if dist_info.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if cfg.train.compile:  # shares run.model's parameters: checkpoints and evaluation stay on the plain model
        train_model = torch.compile(train_model)

    with (RunProgress(cfg.train.epochs, enabled=dist_info.is_main, console=console) as progress,
          MetricLoggers(cfg.train.loggers if dist_info.is_main else [], run_dir, flatten(cfg.to_dict())) as loggers):
        if resumed:
            changed = "".join(f"; {key} {old} -> {new}" for key, (old, new) in changes.items())
            progress.message(f"resuming {run_dir} at epoch {run.epochs_done + 1}/{cfg.train.epochs}{changed}")
        for epoch in range(run.epochs_done, cfg.train.epochs):
            seed_everything(cfg.train.seed + epoch)
            run.loaders.train_sampler.set_epoch(epoch)
            run.model.on_epoch_start(epoch, run.training_data())
            if epoch in run.model.restart_epochs():  # a new stage: fresh optimizer moments, selection anew
                run.optimizer.state.clear()
                run.best = BestSoFar()
                progress.message(f"epoch {epoch + 1}: {run.cfg.method.name} starts a new training stage")
            progress.start_epoch(epoch, len(run.loaders.train))
            try:
                stats = train_one_epoch(
                    train_model, run.loaders.train, run.optimizer, run.scheduler, criterion, device=run.device,
                    precision=run.precision, scaler=run.scaler, mixup=mixup, grad_clip=cfg.train.grad_clip,
                    dist_info=dist_info, on_step=lambda r: progress.step(r.step, _step_line(r)),
                )
            except TrainingDiverged as exc:
                raise _diverged(run, exc) from None
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": run.optimizer.param_groups[0]["lr"], **stats}
            if changes:  # the first epoch after a resume that changed settings says which
                row["resumed_with"], changes = {key: new for key, (_, new) in changes.items()}, {}
            bad = pop_bad_images(run.loaders.train)
            if bad:
                row["skipped_bad_images"] = len(bad)
                progress.message(f"skipped {len(bad)} unreadable images this epoch, e.g. {bad[0]}")
            improved = False
            if (epoch + 1) % cfg.train.eval_every == 0 or epoch + 1 == cfg.train.epochs:
                progress.start_epoch(epoch, len(run.loaders.val), "val")
                val = _evaluate(run, "val", progress.step)
                row.update(val_acc=val["acc"], val_loss=val["loss"])
                if cfg.train.test_every_epoch:
                    test = _evaluate(run, "test")
                    row.update(test_acc=test["acc"], test_loss=test["loss"])
                improved = run.best.update(epoch + 1, val["acc"], run.model)
            run.rows.append(row)
            if dist_info.is_main:
                _save_epoch(run, improved)
                loggers.log(row)
            progress.end_epoch(epoch, _epoch_line(row, cfg.train.epochs, improved))
            if on_epoch is not None:
                on_epoch(row)
    return _finish(run, final_test)


def _build_run(cfg: Config, run_dir: Path, dist_info: DistInfo) -> Run:
    device = resolve_device(cfg.train.device, dist_info)
    seed_everything(cfg.train.seed)
    backbone = build_backbone(cfg)
    splits = build_splits(cfg.data, data_config(backbone))
    coarse = coarse_labels(cfg, splits.classes)  # read and checked against the classes before anything trains
    model = build_model(cfg, len(splits.classes), backbone).to(device)
    beyond = [e for e in model.restart_epochs() if not 0 < e < cfg.train.epochs]
    if beyond:
        raise ConfigError(f"method {cfg.method.name} starts a new training stage at epoch {beyond[0] + 1}, which a "
                          f"run of train.epochs={cfg.train.epochs} never reaches; raise train.epochs or move the stage")
    loaders = build_loaders(splits, cfg.data, distributed=dist_info.enabled, seed=cfg.train.seed,
                            pin_memory=device.type == "cuda")
    precision = Precision.resolve(cfg.train.precision, device)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train, len(loaders.train), model.restart_epochs())
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
    return Run(cfg, run_dir, model, splits, loaders, device, precision, dist_info, optimizer, scheduler, scaler,
               coarse_labels=coarse)


def run_or_reuse(cfg: Config, run_dir: Path, console=None) -> dict[str, Any]:
    """The run's summary: read if the run finished, else trained (or resumed) now."""
    summary = run_dir / SUMMARY
    if summary.is_file():
        return json.loads(summary.read_text())
    return fit(cfg, run_dir, console=console)


def _diverged(run: Run, exc: TrainingDiverged) -> TrainingDiverged:
    """``exc`` with what the run folder keeps and how to go on."""
    if run.epochs_done:
        kept = (f"{run.run_dir} keeps epoch {run.epochs_done} (last.pt, best.pt); continue it with a lower "
                f"learning rate: insvp train --resume {run.run_dir} --set train.lr=...")
    else:
        kept = "no epoch finished, so nothing was kept; start again with a lower train.lr or a train.grad_clip"
    return TrainingDiverged(f"{exc}; {kept}")


def _evaluate(run: Run, split: str, on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    loader = getattr(run.loaders, split)
    result = evaluate(run.model, loader, device=run.device, precision=run.precision, on_step=on_step)
    result["skipped_bad_images"] = len(pop_bad_images(loader))
    return result


def _step_line(r: StepReport) -> str:
    return f"loss {r.loss:.4f}  lr {r.lr:.2e}  {r.images_per_s:.0f} img/s"


def _epoch_line(row: dict[str, Any], epochs: int, improved: bool) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    if "val_acc" in row:
        parts.append(f"val {row['val_acc']:.2f}%" + (" *" if improved else ""))
    if "test_acc" in row:
        parts.append(f"test {row['test_acc']:.2f}%")
    parts.append(f"{row['train_images_per_s']:.0f} img/s")
    return "  ".join(parts)


def _save_epoch(run: Run, improved: bool) -> None:
    """Checkpoints of the epoch just finished, safe against a kill at any point.

    Order matters: ``best.pt``, ``last.pt``, then ``resume.pt`` (which carries the metric rows), then
    ``metrics.jsonl``. A kill before ``resume.pt`` replays the epoch; a kill after it finds the rows in
    ``resume.pt``, so ``metrics.jsonl`` never holds a row twice or a torn row.
    """
    model, cfg, row, epoch = run.model, run.cfg, run.rows[-1], run.rows[-1]["epoch"]
    if improved:
        atomic_save(make_checkpoint(model, cfg, run.classes, {"val_acc": row["val_acc"]}, epoch),
                    run.run_dir / "best.pt")
    atomic_save(make_checkpoint(model, cfg, run.classes, row, epoch), run.run_dir / "last.pt")
    best = {"epoch": run.best.epoch, "val_acc": run.best.val_acc, "state": run.best.state}
    atomic_save(make_resume(model, run.optimizer, run.scheduler, run.scaler, best, run.rows, epoch),
                run.run_dir / RESUME)
    atomic_write_text("".join(json.dumps(r) + "\n" for r in run.rows), run.run_dir / METRICS)


def _restore(run: Run) -> bool:
    """Load ``resume.pt`` if the folder has one; the optimizer's scalar settings come from the (possibly
    changed) config, so a resumed run applies a new learning rate from its next step."""
    path = run.run_dir / RESUME
    if not path.is_file():
        return False
    try:
        state = read_resume(path)
        run.model.load_state_dict(state["model"], strict=False)
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        if run.scaler is not None and state["scaler"] is not None:
            run.scaler.load_state_dict(state["scaler"])
        run.best = BestSoFar(**state["best"])
        run.rows = json.loads(state["rows"]) if "rows" in state else read_metrics(run.run_dir)[: state["epoch"]]
    except Exception as exc:  # truncated, foreign or from another model: every way it can fail is one message
        raise UsageError(f"{path} cannot be resumed from ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
                         f"last.pt keeps the weights of its last epoch") from None
    train = run.cfg.train
    run.scheduler.base_lrs = [train.lr for _ in run.optimizer.param_groups]
    for group, factor in zip(run.optimizer.param_groups, run.scheduler.lr_lambdas, strict=True):
        group["lr"] = train.lr * factor(run.scheduler.last_epoch)
        group["initial_lr"] = train.lr
        if group["weight_decay"]:  # the decay group; the no-decay group stays at 0
            group["weight_decay"] = train.weight_decay
    return True


def _finish(run: Run, final_test: bool) -> dict[str, Any]:
    """Test accuracy at the validation-selected epoch; written into ``best.pt`` and ``summary.json``."""
    cfg, model = run.cfg, run.model
    model.load_state_dict(run.best.state, strict=False)
    skipped, tested = {}, {}
    if final_test:
        test = _evaluate(run, "test")
        tested = {"test_acc": test["acc"], "test_loss": test["loss"]}
        skipped["test"] = test["skipped_bad_images"]
    skipped["val"] = _evaluate(run, "val")["skipped_bad_images"] if cfg.data.on_bad_image == "skip" else 0
    summary: dict[str, Any] = {
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "backbone": cfg.backbone.name,
        "num_classes": len(run.classes),
        "epochs": cfg.train.epochs,
        "best_epoch": run.best.epoch,
        "val_acc": run.best.val_acc,
        **({"test_acc": tested["test_acc"]} if tested else {}),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "trainable_params_without_head": sum(p.numel() for n, p in model.named_parameters()
                                             if p.requires_grad and not n.startswith("head.")),
        "skipped_bad_images": skipped,
    }
    curve = [r["test_acc"] for r in run.rows if "test_acc" in r]
    if curve:
        summary["release_protocol_best_test_acc"] = max(curve)
        summary["release_protocol_note"] = "best test accuracy over epochs, selected on the test set (as the release)"
    if run.dist.is_main:
        metrics = {"val_acc": run.best.val_acc, **tested}
        atomic_save(make_checkpoint(model, cfg, run.classes, metrics, run.best.epoch), run.run_dir / "best.pt")
        atomic_write_text(json.dumps(summary, indent=2) + "\n", run.run_dir / SUMMARY)
    return summary
