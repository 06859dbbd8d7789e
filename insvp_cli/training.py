"""``fit``: a whole run, from a resolved config to ``summary.json``; and ``evaluate_checkpoint``.

Run folder layout (all writes atomic):

- ``config.yaml``   the resolved config, written before training starts
- ``metrics.jsonl`` one row per epoch (loss, lr, accuracies, throughput)
- ``best.pt``       trainable weights at the best validation accuracy (+ config, metrics)
- ``last.pt``       trainable weights after the last finished epoch
- ``resume.pt``     optimizer, scheduler, scaler, epoch and best-so-far: what ``--resume`` needs
- ``summary.json``  the final result: validation-selected epoch and its test accuracy (exists = finished;
  ``fit(test=False)``, a run that must not see the test split such as a sweep trial, has no ``test_acc``)

Model selection is on the validation split; test accuracy is reported at the selected epoch. With
``train.test_every_epoch`` the per-epoch test curve is logged as well, and the release's protocol
("best test accuracy over epochs", selected on the test set) is reported beside ours, labelled as such.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from .backbone import create_backbone, data_config
from .checkpoint import atomic_save, atomic_write_text, make_checkpoint, read_checkpoint, restore_model
from .config import Config, resolve_config
from .data import build_loaders, build_splits, pop_bad_images
from .distributed import DistInfo, init_distributed, shutdown_distributed
from .engine import (
    Precision,
    StepReport,
    build_criterion,
    build_mixup,
    build_optimizer,
    build_scheduler,
    evaluate,
    train_one_epoch,
)
from .errors import UsageError
from .methods import build_model
from .progress import RunProgress

SUMMARY = "summary.json"


def resolve_device(name: str, dist_info: DistInfo | None = None) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"train.device: {name!r} but no CUDA device is available; use cpu or auto")
        if dist_info is not None and dist_info.enabled:
            return torch.device("cuda", dist_info.local_rank)
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed every RNG. Called at the start of every epoch with ``seed + epoch``, so a resumed run replays
    exactly the random numbers (dropout, augmentation, Mixup) of the uninterrupted one."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(cfg: Config) -> Path:
    name = cfg.run_name or f"{cfg.data.name}-{cfg.method.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return Path(cfg.output_dir) / name


@dataclass
class BestSoFar:
    """The validation-selected epoch; its weights are kept in memory on every rank (no file race)."""

    epoch: int = -1
    val_acc: float = -1.0
    state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, val_acc: float, model: nn.Module) -> bool:
        if val_acc > self.val_acc:  # ties keep the earlier epoch
            self.epoch, self.val_acc = epoch, val_acc
            self.state = {k: v.detach().cpu().clone() for k, v in model.trainable_state_dict().items()}
            return True
        return False


def fit(cfg: Config, run_dir: Path | None = None, *, console=None,
        on_epoch: Callable[[dict[str, Any]], None] | None = None, test: bool = True) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (resuming it if it holds a ``resume.pt``); return the summary.

    Works in one process or under ``torchrun`` (one process per device; DDP; rank 0 writes).

    Args:
        cfg: the resolved config.
        run_dir: the run folder (default: ``output_dir/run_name``).
        console: where the progress is drawn.
        on_epoch: called in every process with each epoch's metrics row (``epoch``, ``val_acc`` when the
            epoch was evaluated, ...) once the epoch is saved; an exception it raises ends the run there, with
            that epoch kept (``insvp sweep`` prunes trials this way).
        test: evaluate the test split at the selected epoch. ``False`` for a run that must never see the test
            split (a sweep trial): ``summary.json`` then has no ``test_acc``.

    Raises:
        UsageError: ``test=False`` with ``train.test_every_epoch`` on.
    """
    if not test and cfg.train.test_every_epoch:
        raise UsageError("train.test_every_epoch: true evaluates the test split, which this run must not see")
    dist_info = init_distributed("cuda" if torch.cuda.is_available() and cfg.train.device != "cpu" else "cpu")
    try:
        return _fit(cfg, run_dir or default_run_dir(cfg), dist_info, console, on_epoch, test)
    finally:
        shutdown_distributed(dist_info)


def _fit(cfg: Config, run_dir: Path, dist_info: DistInfo, console, on_epoch, test: bool) -> dict[str, Any]:
    device = resolve_device(cfg.train.device, dist_info)
    seed_everything(cfg.train.seed)
    backbone = create_backbone(cfg.backbone)
    splits = build_splits(cfg.data, data_config(backbone))
    model = build_model(cfg, len(splits.classes), backbone).to(device)
    loaders = build_loaders(splits, cfg.data, distributed=dist_info.enabled, seed=cfg.train.seed,
                            pin_memory=device.type == "cuda")
    main = dist_info.is_main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cfg.to_yaml(), run_dir / "config.yaml")

    precision = Precision.resolve(cfg.train.precision, device)
    optimizer = build_optimizer(model, cfg.train)
    scheduler = build_scheduler(optimizer, cfg.train, len(loaders.train))
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
    mixup = build_mixup(cfg.train, len(splits.classes))
    criterion = build_criterion(cfg.train, mixup)
    start_epoch, best = _restore_resume_state(run_dir, model, optimizer, scheduler, scaler, device)

    train_model: nn.Module = model
    if dist_info.enabled:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    with RunProgress(cfg.train.epochs, enabled=main, console=console) as progress:
        if start_epoch:
            progress.message(f"resuming {run_dir} at epoch {start_epoch + 1}/{cfg.train.epochs}")
        for epoch in range(start_epoch, cfg.train.epochs):
            seed_everything(cfg.train.seed + epoch)
            loaders.train_sampler.set_epoch(epoch)
            progress.start_epoch(epoch, len(loaders.train))
            stats = train_one_epoch(
                train_model, loaders.train, optimizer, scheduler, criterion, device=device, precision=precision,
                scaler=scaler, mixup=mixup, grad_clip=cfg.train.grad_clip, dist_info=dist_info,
                on_step=lambda r: progress.step(r.step, _step_line(r)),
            )
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], **stats}
            bad = pop_bad_images(loaders.train)
            if bad:
                row["skipped_bad_images"] = len(bad)
                progress.message(f"skipped {len(bad)} unreadable images this epoch, e.g. {bad[0]}")
            improved = False
            if (epoch + 1) % cfg.train.eval_every == 0 or epoch + 1 == cfg.train.epochs:
                progress.start_epoch(epoch, len(loaders.val), "val")
                val = evaluate(model, loaders.val, device=device, precision=precision, on_step=progress.step)
                row.update(val_acc=val["acc"], val_loss=val["loss"])
                if cfg.train.test_every_epoch:
                    test = evaluate(model, loaders.test, device=device, precision=precision)
                    row.update(test_acc=test["acc"], test_loss=test["loss"])
                improved = best.update(epoch + 1, val["acc"], model)
            if main:
                _append_metrics(run_dir, row)
                _save_epoch(run_dir, model, cfg, splits.classes, row, epoch, improved, optimizer, scheduler,
                            scaler, best)
            progress.end_epoch(epoch, _epoch_line(row, cfg.train.epochs, improved))
            if on_epoch is not None:
                on_epoch(row)

    return _final_evaluation(cfg, run_dir, model, loaders.test if test else None, splits.classes, device, precision,
                             dist_info, best)


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


def _append_metrics(run_dir: Path, row: dict[str, Any]) -> None:
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()


def _save_epoch(run_dir, model, cfg, classes, row, epoch, improved, optimizer, scheduler, scaler, best) -> None:
    # order matters for a kill at any point: best, then last, then the resume state that points past them
    if improved:
        atomic_save(make_checkpoint(model, cfg, classes, {"val_acc": row["val_acc"]}, epoch + 1), run_dir / "best.pt")
    atomic_save(make_checkpoint(model, cfg, classes, row, epoch + 1), run_dir / "last.pt")
    atomic_save({
        "format_version": 1,
        "epoch": epoch + 1,
        "model": {k: v.detach().cpu() for k, v in model.trainable_state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "best": {"epoch": best.epoch, "val_acc": best.val_acc, "state": best.state},
        "rng": {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np.random.get_state()[1].copy()),
                "python": list(random.getstate()[1])},
    }, run_dir / "resume.pt")


def _restore_resume_state(run_dir, model, optimizer, scheduler, scaler, device) -> tuple[int, BestSoFar]:
    path = run_dir / "resume.pt"
    if not path.is_file():
        return 0, BestSoFar()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    epoch = int(state["epoch"])
    best = BestSoFar(**state["best"])
    # rows of an epoch that ran after the last resume state was written are replayed: drop them
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        rows = [line for line in metrics.read_text().splitlines() if line.strip()]
        kept = [line for line in rows if json.loads(line)["epoch"] <= epoch]
        atomic_write_text("".join(line + "\n" for line in kept), metrics)
    return epoch, best


def _final_evaluation(cfg, run_dir, model, test_loader, classes, device, precision, dist_info, best) -> dict[str, Any]:
    """Test accuracy at the validation-selected epoch (none without a ``test_loader``); into ``best.pt`` and the
    summary."""
    model.load_state_dict(best.state, strict=False)
    test = evaluate(model, test_loader, device=device, precision=precision) if test_loader is not None else None
    summary: dict[str, Any] = {
        "method": cfg.method.name,
        "dataset": cfg.data.name,
        "backbone": cfg.backbone.name,
        "num_classes": len(classes),
        "epochs": cfg.train.epochs,
        "best_epoch": best.epoch,
        "val_acc": best.val_acc,
        **({"test_acc": test["acc"]} if test is not None else {}),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "trainable_params_without_head": sum(p.numel() for n, p in model.named_parameters()
                                             if p.requires_grad and not n.startswith("head.")),
    }
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()] if dist_info.is_main else []
    curve = [r["test_acc"] for r in rows if "test_acc" in r]
    if curve:
        summary["release_protocol_best_test_acc"] = max(curve)
        summary["release_protocol_note"] = "best test accuracy over epochs, selected on the test set (as the release)"
    if dist_info.is_main:
        metrics = {"val_acc": best.val_acc}
        if test is not None:
            metrics.update(test_acc=test["acc"], test_loss=test["loss"])
        atomic_save(make_checkpoint(model, cfg, classes, metrics, best.epoch), run_dir / "best.pt")
        atomic_write_text(json.dumps(summary, indent=2) + "\n", run_dir / SUMMARY)
    return summary


def load_run_config(run_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UsageError(f"--resume {run_dir}: no config.yaml there; it is not a run folder")
    return resolve_config(yaml.safe_load(path.read_text()), overrides)


def evaluate_checkpoint(checkpoint: str | Path, split: str = "test", overrides: list[str] | tuple[str, ...] = (),
                        ) -> dict[str, Any]:
    """Rebuild a model from a checkpoint alone and evaluate it on ``split`` (val or test)."""
    from .checkpoint import checkpoint_config

    ckpt = read_checkpoint(checkpoint)
    cfg = checkpoint_config(ckpt, overrides)
    device = resolve_device(cfg.train.device)
    model = restore_model(ckpt, cfg).to(device)
    splits = build_splits(cfg.data, data_config(model.backbone))
    named = ckpt.get("classes_named", True)
    if len(splits.classes) != len(ckpt["classes"]) or (named and list(splits.classes) != list(ckpt["classes"])):
        raise UsageError(f"checkpoint {ckpt['path']}: the data has other classes ({len(splits.classes)}) than it "
                         f"was trained on ({len(ckpt['classes'])}); check data.name, data.root and data.classes")
    loaders = build_loaders(splits, cfg.data, distributed=False, seed=cfg.train.seed, pin_memory=device.type == "cuda")
    result = evaluate(model, getattr(loaders, split), device=device,
                      precision=Precision.resolve(cfg.train.precision, device))
    logged = ckpt["metrics"].get(f"{split}_acc")
    return {"checkpoint": ckpt["path"], "split": split, "acc": result["acc"], "loss": result["loss"],
            "images": int(result["images"]), "logged_acc": logged}
