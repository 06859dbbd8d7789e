"""One training path for every method: ``build_optimizer``, ``Schedule``, ``train_one_epoch``, ``evaluate``.

Plain functions taking explicit objects; nothing here knows which method it trains. Only parameters
with ``requires_grad`` reach the optimizer, so a frozen backbone gets no weight gradients at all
(only input gradients flow through it), unlike the authors' release (docs/method.md §2).

No step waits for the GPU: the loss is summed and checked for finiteness on the device (:class:`_LossWatch`) and
read back once every :data:`SYNC_EVERY` steps and at the end of the epoch, so the host keeps queueing work while the
device computes. ``evaluate`` counts on the device and reads back once. (fp16's GradScaler reads its overflow flag
every step: that is how it decides to skip a step.)
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
from ..runtime.distributed import DistInfo, sum_over_ranks
from ..runtime.precision import Precision, eval_logits

# training steps between two reads of the loss by the host (the progress line and the finiteness check)
SYNC_EVERY = 25


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` (AdamW, Adam or SGD with momentum) over trainable parameters only, split into decay /
    no-decay groups.

    The method decides which tensors decay (``model.decays(name, param)``): by default not biases, norm
    weights (every 1-D tensor) and the names it lists in ``no_weight_decay()`` (prompt tokens), as in timm
    and nanoGPT. When every tensor decays there is one group. Each group records whether it decays
    (``group["decay"]``), so that its weight decay follows the config (:func:`apply_weight_decay`).
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (decay if model.decays(name, param) else no_decay).append(param)
    groups = [{"params": decay, "decay": True}, {"params": no_decay, "decay": False}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    else:
        optimizer = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW)(groups, lr=cfg.lr)
    apply_weight_decay(optimizer, cfg)
    return optimizer


def apply_weight_decay(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> None:
    """``cfg.weight_decay`` on the decaying group, 0 on the other: set when the optimizer is built and again when
    its saved state is loaded (a resumed run may change the weight decay)."""
    for group in optimizer.param_groups:
        group["weight_decay"] = cfg.weight_decay if group["decay"] else 0.0


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict, cfg: TrainConfig) -> None:
    """Load a saved optimizer state (its moments); its hyper-parameters come from ``cfg`` again, the groups keep
    their decay flags (a state saved before the groups had them has the same groups in the same order)."""
    decays = [group["decay"] for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, decay in zip(optimizer.param_groups, decays, strict=True):
        group["decay"] = decay
    apply_weight_decay(optimizer, cfg)


class Schedule:
    """The learning rate of every optimizer step: a per-step linear warm-up over ``warmup_fraction`` of the steps,
    then ``cfg.schedule``: a cosine down to ``min_lr``, or ``multistep``: the learning rate times ``gamma`` from each
    milestone's epoch on (``int(fraction * epochs)``, as ILM-VP's ``MultiStepLR``).

    ``restarts`` (0-based epochs, a method's ``restart_epochs()``) cut the run into stages; each stage gets the
    whole schedule, warm-up and decay, over its own steps. The rate is a function of the config and the step count
    alone, so a resumed run builds its schedule from its (possibly changed) config and the steps it has taken.

    Args:
        cfg: the ``train`` config.
        steps_per_epoch: optimizer steps of an epoch.
        restarts: the method's restart epochs.
        step: steps taken so far (a resumed run's).
    """

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int, restarts: Sequence[int] = (), step: int = 0):
        self.cfg, self.steps_per_epoch, self.step = cfg, steps_per_epoch, step
        epochs = sorted({0, *(e for e in restarts if 0 < e < cfg.epochs)})
        self._bounds = [e * steps_per_epoch for e in epochs] + [max(1, cfg.epochs * steps_per_epoch)]

    def factor(self, step: int) -> float:
        """The learning rate of step ``step`` as a fraction of ``cfg.lr``."""
        cfg, bounds = self.cfg, self._bounds
        stage = min(bisect.bisect_right(bounds, step), len(bounds) - 1)  # stage k runs over [bounds[k-1], bounds[k])
        start, total = bounds[stage - 1], max(1, bounds[stage] - bounds[stage - 1])
        warmup, step = int(cfg.warmup_fraction * total), step - start
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "multistep":
            per_epoch = max(1, self.steps_per_epoch)
            stage_epochs = max(1, total // per_epoch)
            return cfg.gamma ** sum(step // per_epoch >= int(m * stage_epochs) for m in cfg.milestones)
        floor = cfg.min_lr / cfg.lr
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def lr(self) -> float:
        """The learning rate of the next step."""
        return self.cfg.lr * self.factor(self.step)

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        """Set every group's learning rate to that of the next step."""
        for group in optimizer.param_groups:
            group["lr"] = self.lr()

    def advance(self, optimizer: torch.optim.Optimizer) -> None:
        """One step taken: the groups get the next step's learning rate."""
        self.step += 1
        self.apply(optimizer)


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
    """What the progress display shows after each step (``loss``: the last one read back, NaN before the first)."""

    step: int
    loss: float
    lr: float
    images_per_s: float


class _LossWatch:
    """An epoch's loss on the device: the running sum, the last value and the first non-finite one, read back by the
    host only in :meth:`read`.

    A non-finite loss is thus found at the next read, up to :data:`SYNC_EVERY` steps after it happened: the weights
    in memory may have gone bad by then, but the run stops before the epoch is saved, so the run folder keeps the
    last good epoch.
    """

    def __init__(self, device: torch.device):
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.loss_sum, self.images, self.last, self.bad_loss = (
            torch.zeros((), dtype=dtype, device=device) for _ in range(4))
        self.bad_step = torch.full((), -1.0, dtype=dtype, device=device)  # first 1-based step with a bad loss; -1: none

    def add(self, loss: torch.Tensor, count: int, step: int) -> None:
        loss = loss.detach().to(self.loss_sum.dtype)
        first = (self.bad_step < 0) & ~torch.isfinite(loss)
        self.bad_step = torch.where(first, step, self.bad_step)
        self.bad_loss = torch.where(first, loss, self.bad_loss)
        self.loss_sum += loss * count  # as the float64 sum of loss.item() * count
        self.images += count
        self.last = loss

    def read(self, dist_info: DistInfo) -> tuple[float, float, int]:
        """(the last loss, the loss summed over the images of every rank so far, their number), in one transfer.

        Raises:
            TrainingDiverged: a non-finite loss on any rank (every rank raises at the same read).
        """
        summed = sum_over_ranks(torch.stack([(self.bad_step >= 0).to(self.loss_sum.dtype), self.loss_sum, self.images]),
                                dist_info)
        any_bad, total, images, bad_step, bad_loss, last = torch.cat(
            [summed, torch.stack([self.bad_step, self.bad_loss, self.last])]).tolist()
        if any_bad:
            where = f"at step {int(bad_step)} of the epoch" if bad_step >= 0 else "on another process"
            raise TrainingDiverged(f"the loss became {bad_loss if bad_step >= 0 else 'non-finite'} {where}")
        return last, total, int(images)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
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
        TrainingDiverged: on a NaN or infinite loss, at the first read after it (see :class:`_LossWatch`).
    """
    model.train()
    start = time.perf_counter()
    watch, seen, shown = _LossWatch(device), 0, math.nan
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
        watch.add(loss, images.shape[0], step + 1)
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
        schedule.advance(optimizer)
        seen += images.shape[0]
        if (step + 1) % SYNC_EVERY == 0:
            shown, _, _ = watch.read(dist_info)
        if on_step is not None:
            elapsed = time.perf_counter() - start
            on_step(StepReport(step + 1, shown, optimizer.param_groups[0]["lr"],
                               seen * dist_info.world_size / max(elapsed, 1e-9)))
    _, loss_sum, seen = watch.read(dist_info)
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
    dist_info: DistInfo = DistInfo(),
) -> dict[str, float]:
    """Top-1 accuracy (%) and mean cross-entropy over ``loader``; under ``torchrun`` each rank passes its part of the
    split and the counts are summed over the ranks (exact: every image counted once)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
    total = 0
    start = time.perf_counter()
    for step, (images, targets) in enumerate(loader):
        logits = eval_logits(model, images, device, precision)
        targets = targets.to(device, non_blocking=True)
        loss_sum += nn.functional.cross_entropy(logits.float(), targets, reduction="sum").to(loss_sum.dtype)
        correct += (logits.argmax(dim=1) == targets).sum()
        total += targets.shape[0]
        if on_step is not None:
            on_step(step + 1)
    counts = torch.stack([correct.to(loss_sum.dtype), loss_sum, loss_sum.new_tensor(total)])
    correct, loss_sum, total = sum_over_ranks(counts, dist_info).tolist()  # the one read back
    seconds = time.perf_counter() - start
    return {"acc": 100.0 * correct / max(total, 1), "loss": loss_sum / max(total, 1), "images": total,
            "images_per_s": total / max(seconds, 1e-9)}
