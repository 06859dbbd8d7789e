"""``fit``: a whole run, from its config to ``summary.json``, in a run folder.

A new run writes its config first (:class:`~insvp_cli.runs.folder.RunFolder`); a folder that holds a run
continues it from ``resume.pt`` (:class:`.state.RunState`), after checking that the config changes only what a
resume may change. Model selection is on the validation split; test accuracy is reported at the selected epoch.
With ``train.test_every_epoch`` the per-epoch test curve is logged as well, and the release's protocol ("best
test accuracy over epochs", selected on the test set) is reported beside ours, labelled as such.
``fit(final_test=False)``, for a run that must not see the test split such as a sweep trial, writes a summary
without ``test_acc``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from ..backbone import data_config, token_shape
from ..common.errors import ConfigError, RunInterrupted, TrainingDiverged, UsageError
from ..config.overrides import flatten
from ..config.schema import Config
from ..data.base import Splits
from ..data.cache import cache_splits
from ..data.loaders import (
    ImageLoader,
    Loaders,
    augmentation_seeds,
    build_loaders,
    part_bounds,
    pop_bad_images,
    shard,
)
from ..data.splits import build_splits
from ..methods.base import TrainingData
from ..methods.build import build_backbone, build_model
from ..resolve.needs import coarse_labels
from ..runs.checkpoint import Checkpoint
from ..runs.folder import RunFolder
from ..runtime.backends import run_backends
from ..runtime.devices import resolve_device
from ..runtime.distributed import DistInfo, init_distributed, shutdown_distributed
from ..runtime.memory import check_batch
from ..runtime.precision import Precision
from .engine import StepReport, build_criterion, build_mixup, evaluate, train_one_epoch
from .loggers import MetricLoggers, check_loggers
from .progress import RunProgress
from .state import RunState, read_resume_point

# distinguishes the epoch seeds from every other stream drawn from the run's seed
_EPOCH_STREAM = 0xE90C


def seed_everything(seed: int) -> None:
    """Seed every RNG (Python's, NumPy's, torch's on every device) with ``seed``: what the model is built under."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Seed every RNG of this process for ``epoch``: dropout, Mixup/CutMix and every other draw of the main process
    are then a function of ``(seed, epoch, rank)`` alone, so a resumed run replays the uninterrupted one and the
    processes of a ``torchrun`` draw differently. The loader's augmentation has its own seeds, one per sample
    (:mod:`insvp_cli.data.loaders`), and the training order is shared by the ranks."""
    seed_everything(int(np.random.SeedSequence([seed, epoch, rank, _EPOCH_STREAM]).generate_state(1, np.uint64)[0]))


@dataclass
class Run:
    """Everything one training run holds: what ``fit`` builds once and every step of it reads.

    Attributes:
        cfg: the run's config.
        folder: the run folder.
        splits, loaders: the data.
        device, precision, dist: where and how it runs.
        state: what changes as it trains (model, optimizer, schedule, scaler, best epoch, metric rows).
        coarse_labels: the coarse class of each class, for methods that need a hierarchy (else ``None``).
    """

    cfg: Config
    folder: RunFolder
    splits: Splits
    loaders: Loaders
    device: torch.device
    precision: Precision
    dist: DistInfo
    state: RunState
    coarse_labels: list[int] | None = None

    @property
    def model(self):
        return self.state.model

    @property
    def classes(self) -> list[str]:
        return list(self.splits.classes)

    def training_data(self) -> TrainingData:
        """The training split with the evaluation transform (and, for methods that ask, with its own augmenting
        transform), this process's part of it, for the methods' data hooks."""
        def loader(augmented: bool = False) -> ImageLoader:
            train, (rank, world), data = self.splits.train, (self.dist.rank, self.dist.world_size), self.cfg.data
            keys = None
            if augmented:  # each image's crop and flip of epoch 0, under its own seed: whatever the workers
                start, stop = part_bounds(len(train), rank, world)
                keys = list(enumerate(augmentation_seeds(self.cfg.train.seed, 0, len(train))[start:stop].tolist()))
            else:
                train = train.with_transform(self.splits.test.transform)
            return ImageLoader(shard(train, rank, world), sampler=keys, batch_size=data.batch_size,
                               num_workers=data.num_workers, on_bad_image=data.on_bad_image)

        return TrainingData(loader, self.classes, self.device, self.coarse_labels, lambda: loader(augmented=True),
                            self.precision, self.dist)


def fit(cfg: Config, run_dir: Path | None = None, *, console=None, final_test: bool = True,
        on_epoch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (continuing the run there if it holds one); return the summary.

    Works in one process or under ``torchrun`` (one process per device; DDP; rank 0 writes and holds the
    run folder's lock).

    Args:
        cfg: the run's config, resolved once when the run was created (its data requirements bound); for a run that
            continues, its stored config with the changes a resume may make.
        run_dir: the run folder (default: ``output_dir/run_name``).
        console: where progress goes (default: stderr).
        final_test: evaluate the test split at the selected epoch. ``False`` for a run that must never see the
            test split (a sweep trial): ``summary.json`` then has no ``test_acc``.
        on_epoch: called with each epoch's metric row after it is saved (e.g. to report to a pruner; it
            may raise to stop the run, which stays resumable).

    Raises:
        UsageError: the folder is locked by another process (``RunInUse``), holds a finished run these epochs
            would not continue (``RunFinished``), or holds another run than this config may continue.
        TrainingDiverged: a non-finite loss; the message says what was kept.
        RunInterrupted: Ctrl-C; the run resumes from its last finished epoch.
    """
    if not final_test and cfg.train.test_every_epoch:
        raise UsageError("train.test_every_epoch: true evaluates the test split, which this run must not see")
    check_loggers(cfg.train.loggers)  # a missing extra stops the run before any work
    folder = RunFolder(run_dir) if run_dir is not None else RunFolder.default(cfg)
    dist_info = init_distributed("cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu")
    try:
        device = resolve_device(cfg.train.device, dist_info)
        with (folder.lock(enabled=dist_info.is_main),
              run_backends(device, tf32=cfg.train.tf32, deterministic=cfg.train.deterministic)):
            if dist_info.is_main:
                folder.remove_stale_files()
            return _fit(cfg, folder, device, dist_info, console, final_test, on_epoch)
    except KeyboardInterrupt as exc:
        raise RunInterrupted(folder.path) from exc
    finally:
        shutdown_distributed(dist_info)


def _fit(cfg: Config, folder: RunFolder, device: torch.device, dist_info: DistInfo, console, final_test: bool,
         on_epoch: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    changes = folder.changes_to(cfg)  # compare, reproduce and sweep continue their folders through here too
    point = read_resume_point(folder)  # a damaged resume.pt stops the run before anything is built
    resumed = point is not None
    if resumed:  # checked holding the lock: a run another process finished a moment ago is refused too; resume.pt
        folder.check_epochs(cfg.train.epochs, point.epoch)  # is one epoch ahead of metrics.jsonl after some kills
    run = _build_run(cfg, folder, device, dist_info, console)
    if resumed:
        run.state.restore(point, folder, cfg)
    else:
        run.model.prepare(run.training_data())
    if dist_info.is_main:
        folder.write_config(cfg)
        if resumed:  # the rows of every epoch resume.pt keeps, whatever epochs end the run
            folder.write_metrics(run.state.rows)
    mixup = build_mixup(cfg.train, len(run.classes))
    criterion = partial(run.model.loss, criterion=build_criterion(cfg.train, mixup))
    train_model: nn.Module = run.model
    if dist_info.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if cfg.train.compile:  # shares run.model's parameters: checkpoints and evaluation stay on the plain model
        train_model = CompiledForFullBatches(train_model)
    state = run.state

    with (RunProgress(cfg.train.epochs, enabled=dist_info.is_main, console=console) as progress,
          MetricLoggers(cfg.train.loggers if dist_info.is_main else [], folder.path, flatten(cfg.to_dict()))
          as loggers):
        if resumed:
            changed = "".join(f"; {key} {old} -> {new}" for key, (old, new) in changes.items())
            progress.message(f"resuming {folder} at epoch {state.epochs_done + 1}/{cfg.train.epochs}{changed}"
                             if state.epochs_done < cfg.train.epochs else
                             f"finishing {folder}: its {cfg.train.epochs} epochs are done; testing the selected epoch "
                             f"and writing {folder.SUMMARY}{changed}")
        for epoch in range(state.epochs_done, cfg.train.epochs):
            seed_epoch(cfg.train.seed, epoch, dist_info.rank)
            run.loaders.train_sampler.set_epoch(epoch)
            run.model.on_epoch_start(epoch, run.training_data())
            if epoch in run.model.restart_epochs():
                state.new_stage()
                progress.message(f"epoch {epoch + 1}: {cfg.method.name} starts a new training stage")
            progress.start_epoch(epoch, len(run.loaders.train))
            try:
                stats = train_one_epoch(
                    train_model, run.loaders.train, state.optimizer, state.schedule, criterion, device=run.device,
                    precision=run.precision, scaler=state.scaler, mixup=mixup, grad_clip=cfg.train.grad_clip,
                    dist_info=dist_info, on_step=lambda r: progress.step(r.step, _step_line(r)),
                )
            except TrainingDiverged as exc:
                raise _diverged(run, exc) from None
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": state.optimizer.param_groups[0]["lr"], **stats}
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
                improved = state.best.update(epoch + 1, val["acc"], run.model)
            state.rows.append(row)
            if dist_info.is_main:
                state.save(folder, cfg, run.classes, improved)
                loggers.log(row)
            progress.end_epoch(epoch, _epoch_line(row, cfg.train.epochs, improved))
            if on_epoch is not None:
                on_epoch(row)
    return _finish(run, final_test)


def _build_run(cfg: Config, folder: RunFolder, device: torch.device, dist_info: DistInfo, console) -> Run:
    seed_everything(cfg.train.seed)
    backbone = build_backbone(cfg)
    check_batch(cfg.data.batch_size, tuple(data_config(backbone)["input_size"][1:]), *token_shape(backbone), device)
    splits = build_splits(cfg.data, data_config(backbone))
    coarse = coarse_labels(cfg, splits.classes)  # read and checked against the classes before anything trains
    model = build_model(cfg, len(splits.classes), backbone).to(device)
    beyond = [e for e in model.restart_epochs() if not 0 < e < cfg.train.epochs]
    if beyond:
        raise ConfigError(f"method {cfg.method.name} starts a new training stage at epoch {beyond[0] + 1}, which a "
                          f"run of train.epochs={cfg.train.epochs} never reaches; raise train.epochs or move the stage")
    if dist_info.enabled:  # each process evaluates its part; the engine sums the counts
        rank, world = dist_info.rank, dist_info.world_size
        splits = dataclasses.replace(splits, val=shard(splits.val, rank, world), test=shard(splits.test, rank, world))
    splits = cache_splits(splits, cfg.data, (console or Console(stderr=True)) if dist_info.is_main else None)
    loaders = build_loaders(splits, cfg.data, distributed=dist_info.enabled, seed=cfg.train.seed,
                            pin_memory=device.type == "cuda")
    precision = Precision.resolve(cfg.train.precision, device)
    state = RunState.start(model, cfg, len(loaders.train), device, fp16=precision.needs_scaler)
    return Run(cfg, folder, splits, loaders, device, precision, dist_info, state, coarse)


class CompiledForFullBatches(nn.Module):
    """``torch.compile`` of ``model`` for batches of the size of the first one (an epoch's full batches); the eager
    ``model`` for any other size (an epoch's short last batch), which would otherwise compile the graph again."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.eager, self.compiled, self.full = model, torch.compile(model), None

    def forward(self, images: torch.Tensor, **kwargs: Any):
        self.full = self.full or images.shape[0]
        return (self.compiled if images.shape[0] == self.full else self.eager)(images, **kwargs)


def _diverged(run: Run, exc: TrainingDiverged) -> TrainingDiverged:
    """``exc`` with what the run folder keeps and how to go on."""
    done, folder = run.state.epochs_done, run.folder
    if done:
        kept = (f"{folder} keeps epoch {done} ({folder.LAST}, {folder.BEST}); continue it with a lower learning "
                f"rate: insvp train --resume {folder} --set train.lr=...")
    else:
        kept = "no epoch finished, so nothing was kept; start again with a lower train.lr or a train.grad_clip"
    return TrainingDiverged(f"{exc}; {kept}")


def _evaluate(run: Run, split: str, on_step: Callable[[int], None] | None = None) -> dict[str, float]:
    loader = getattr(run.loaders, split)
    result = evaluate(run.model, loader, device=run.device, precision=run.precision, on_step=on_step,
                      dist_info=run.dist)
    result["skipped_bad_images"] = len(pop_bad_images(loader))
    return result


def _step_line(r: StepReport) -> str:
    loss = "" if math.isnan(r.loss) else f"loss {r.loss:.4f}  "  # not read back yet
    return f"{loss}lr {r.lr:.2e}  {r.images_per_s:.0f} img/s"


def _epoch_line(row: dict[str, Any], epochs: int, improved: bool) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss {row['train_loss']:.4f}"]
    if "val_acc" in row:
        parts.append(f"val {row['val_acc']:.2f}%" + (" *" if improved else ""))
    if "test_acc" in row:
        parts.append(f"test {row['test_acc']:.2f}%")
    parts.append(f"{row['train_images_per_s']:.0f} img/s")
    return "  ".join(parts)


def _finish(run: Run, final_test: bool) -> dict[str, Any]:
    """Test accuracy at the validation-selected epoch; written into ``best.pt`` and ``summary.json``."""
    cfg, model, best = run.cfg, run.model, run.state.best
    model.load_state_dict(best.state, strict=False)
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
        "best_epoch": best.epoch,
        "val_acc": best.val_acc,
        **({"test_acc": tested["test_acc"]} if tested else {}),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "trainable_params_without_head": sum(p.numel() for n, p in model.named_parameters()
                                             if p.requires_grad and not n.startswith("head.")),
        "skipped_bad_images": skipped,
    }
    curve = [r["test_acc"] for r in run.state.rows if "test_acc" in r]
    if curve:
        summary["release_protocol_best_test_acc"] = max(curve)
        summary["release_protocol_note"] = "best test accuracy over epochs, selected on the test set (as the release)"
    if run.dist.is_main:
        metrics = {"val_acc": best.val_acc, **tested}
        Checkpoint.of(model, cfg, run.classes, metrics, best.epoch).save(run.folder.best)
        run.folder.write_summary(summary)
    return summary
