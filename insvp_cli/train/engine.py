"""One training path for every method: ``build_optimizer``, ``build_scheduler``, ``train_one_epoch``, ``evaluate``.

Plain functions taking explicit objects; nothing here knows which method it trains. Only parameters
with ``requires_grad`` reach the optimizer, so a frozen backbone gets no weight gradients at all
(only input gradients flow through it), unlike the authors' release (docs/method.md §2).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..common.errors import TrainingDiverged
from ..config.schema import TrainConfig
from ..runtime.distributed import DistInfo, all_reduce_sum, any_rank
from ..runtime.precision import Precision, eval_logits


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` (AdamW, Adam or SGD with momentum) over trainable parameters only, split into decay /
    no-decay groups.

    The method decides which tensors decay (``model.decays(name, param)``): by default not biases, norm
    weights (every 1-D tensor) and the names it lists in ``no_weight_decay()`` (prompt tokens), as in timm
    and nanoGPT. When every tensor decays there is one group.
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if model.decays(name, param) else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW)(groups, lr=cfg.lr)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int,
                    restarts: Sequence[int] = ()):
    """Per-step linear warm-up over ``warmup_fraction`` of the steps, then ``cfg.schedule``: a cosine down to
    ``min_lr``, or ``multistep``: the learning rate times ``gamma`` from each milestone's epoch on
    (``int(fraction * epochs)``, as ILM-VP's ``MultiStepLR``).

    ``restarts`` (0-based epochs, a method's ``restart_epochs()``) cut the run into stages; each stage gets
    the whole schedule, warm-up and decay, over its own steps.
    """
    epochs = sorted({0, *(e for e in restarts if 0 < e < cfg.epochs)})
    bounds = [e * steps_per_epoch for e in epochs] + [max(1, cfg.epochs * steps_per_epoch)]
    floor = cfg.min_lr / cfg.lr

    def factor(step: int) -> float:
        stage = min(bisect.bisect_right(bounds, step), len(bounds) - 1)  # stage k runs over [bounds[k-1], bounds[k])
        start, total = bounds[stage - 1], max(1, bounds[stage] - bounds[stage - 1])
        warmup, step = int(cfg.warmup_fraction * total), step - start
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "multistep":
            stage_epochs = max(1, total // max(1, steps_per_epoch))
            passed = sum(step // max(1, steps_per_epoch) >= int(m * stage_epochs) for m in cfg.milestones)
            return cfg.gamma ** passed
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_mixup(cfg: TrainConfig, num_classes: int):
    """timm Mixup/CutMix with label smoothing (``None`` when both alphas are 0)."""
    if (cfg.mixup <= 0 and cfg.cutmix <= 0) or cfg.mix_prob <= 0:
        return None
    from timm.data import Mixup

    return Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, prob=cfg.mix_prob, switch_prob=cfg.switch_prob,
                 mode="batch", label_smoothing=cfg.label_smoothing, num_classes=num_classes)


def build_criterion(cfg: TrainConfig, mixup) -> nn.Module:
    """Soft-target cross-entropy with Mixup (its targets carry the smoothing), else smoothed cross-entropy."""
    if mixup is not None:
        from timm.loss import SoftTargetCrossEntropy

        return SoftTargetCrossEntropy()
    return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)


@dataclass
class StepReport:
    """What the progress display shows after each step."""

    step: int
    loss: float
    lr: float
    images_per_s: float


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    scheduler,
    criterion: nn.Module,
    *,
    device: torch.device,
    precision: Precision,
    scaler: torch.amp.GradScaler | None,
    mixup=None,
    grad_clip: float | None = None,
    dist_info: DistInfo = DistInfo(),
    on_step: Callable[[StepReport], None] | None = None,
) -> dict[str, float]:
    """One pass over ``loader``; returns the mean loss, images seen (all ranks), seconds and throughput.

    ``model(images, with_aux=True)`` gives the logits and the auxiliary outputs of the forward (a
    :class:`~insvp_cli.methods.base.Method`, or a DDP / ``torch.compile`` wrapper of one), and ``criterion(logits,
    targets, **aux)`` the loss: the method's ``loss`` with its criterion bound, or a plain loss for methods
    without auxiliary outputs.

    Raises:
        TrainingDiverged: on a NaN or infinite loss (before the optimizer step, so weights stay finite).
    """
    model.train()
    start = time.perf_counter()
    loss_sum, seen = 0.0, 0
    for step, (images, targets) in enumerate(loader):
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if mixup is not None:
            if images.shape[0] % 2:  # timm's batch mixing pairs samples: drop the odd one out, as the release
                images, targets = images[:-1], targets[:-1]
            if images.shape[0] == 0:
                continue
            images, targets = mixup(images, targets)
        with precision.autocast():
            logits, aux = model(images, with_aux=True)
            loss = criterion(logits, targets, **aux)
        if any_rank(not torch.isfinite(loss).item(), dist_info, device):
            raise TrainingDiverged(f"the loss became {loss.item()} at step {step + 1} of the epoch")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(_trainable(optimizer), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(_trainable(optimizer), grad_clip)
            optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * images.shape[0]
        seen += images.shape[0]
        if on_step is not None:
            elapsed = time.perf_counter() - start
            on_step(StepReport(step + 1, loss.item(), optimizer.param_groups[0]["lr"],
                               seen * dist_info.world_size / max(elapsed, 1e-9)))
    loss_sum, seen = all_reduce_sum([loss_sum, float(seen)], dist_info, device)
    seconds = time.perf_counter() - start
    return {"train_loss": loss_sum / max(seen, 1), "train_images": seen, "train_seconds": seconds,
            "train_images_per_s": seen / max(seconds, 1e-9)}


def _trainable(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: torch.device,
    precision: Precision,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Top-1 accuracy (%) and mean cross-entropy over ``loader`` (the whole split, also under torchrun)."""
    model.eval()
    correct, total, loss_sum = 0.0, 0.0, 0.0
    start = time.perf_counter()
    for step, (images, targets) in enumerate(loader):
        logits = eval_logits(model, images, device, precision)
        targets = targets.to(device, non_blocking=True)
        loss_sum += nn.functional.cross_entropy(logits.float(), targets, reduction="sum").item()
        correct += (logits.argmax(dim=1) == targets).sum().item()
        total += targets.shape[0]
        if on_step is not None:
            on_step(step + 1)
    seconds = time.perf_counter() - start
    return {"acc": 100.0 * correct / max(total, 1), "loss": loss_sum / max(total, 1), "images": total,
            "images_per_s": total / max(seconds, 1e-9)}
