"""The training loop's state as one object: saved after every epoch, restored when a run resumes.

:class:`RunState` holds what changes while a run trains (the model's trainable tensors, the optimizer's moments,
the step count that the learning-rate schedule follows, the fp16 scaler, the validation-selected epoch and the
metric rows) and writes it to the run folder in the one order that survives a kill at any moment
(:meth:`RunState.save`). A resumed run builds its optimizer and schedule from its (possibly changed) config,
then :meth:`RunState.restore` puts the saved state into them: the moments and the step count come from the file,
every hyper-parameter from the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..common.errors import UsageError, first_sentence
from ..config.schema import Config
from ..methods.base import Method
from ..runs.checkpoint import Checkpoint, ResumePoint
from ..runs.folder import RunFolder
from .engine import Schedule, build_optimizer, load_optimizer_state


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
class RunState:
    """What a run changes as it trains.

    Attributes:
        model: the method (not wrapped in DDP or ``torch.compile``).
        optimizer: over the trainable parameters.
        schedule: the learning rate of each step, and the steps taken.
        scaler: the fp16 GradScaler (``None`` in other precisions).
        best: the validation-selected epoch so far.
        rows: the metric rows of the finished epochs.
    """

    model: Method
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler | None
    best: BestSoFar = field(default_factory=BestSoFar)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, model: Method, cfg: Config, steps_per_epoch: int, device: torch.device,
              fp16: bool) -> RunState:
        """The state of a run before its first step: a new optimizer and the schedule at step 0."""
        optimizer = build_optimizer(model, cfg.train)
        schedule = Schedule(cfg.train, steps_per_epoch, model.restart_epochs())
        schedule.apply(optimizer)
        return cls(model, optimizer, schedule, torch.amp.GradScaler(device.type) if fp16 else None)

    @property
    def epochs_done(self) -> int:
        return self.rows[-1]["epoch"] if self.rows else 0

    def new_stage(self) -> None:
        """A method's new training stage: fresh optimizer moments and a new selection among its epochs."""
        self.optimizer.state.clear()
        self.best = BestSoFar()

    def save(self, folder: RunFolder, cfg: Config, classes: list[str], improved: bool) -> None:
        """The files of the epoch just finished, safe against a kill at any point.

        Order matters: ``best.pt`` (if the epoch improved), ``last.pt``, then ``resume.pt`` (which carries the metric
        rows), then ``metrics.jsonl``. A kill before ``resume.pt`` replays the epoch; a kill after it finds the rows
        in ``resume.pt``, so ``metrics.jsonl`` never holds a row twice or a torn row.
        """
        row = self.rows[-1]
        epoch = row["epoch"]
        if improved:
            Checkpoint.of(self.model, cfg, classes, {"val_acc": row["val_acc"]}, epoch).save(folder.best)
        Checkpoint.of(self.model, cfg, classes, row, epoch).save(folder.last)
        ResumePoint(
            epoch=epoch, step=self.schedule.step,
            model={k: v.detach().cpu() for k, v in self.model.trainable_state_dict().items()},
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict() if self.scaler is not None else None,
            best={"epoch": self.best.epoch, "val_acc": self.best.val_acc, "state": self.best.state},
            rows=self.rows,
        ).save(folder.resume_file)
        folder.write_metrics(self.rows)

    def restore(self, point: ResumePoint, folder: RunFolder, cfg: Config) -> None:
        """Continue from ``point`` (the folder's ``resume.pt``, :func:`read_resume_point`): the model's tensors and
        the optimizer's moments from the file, every hyper-parameter from ``cfg``.

        Raises:
            UsageError: the state does not fit this run's model or optimizer (another model's file).
        """
        try:
            self.model.load_state_dict(point.model, strict=False)
            load_optimizer_state(self.optimizer, point.optimizer, cfg.train)
            if self.scaler is not None and point.scaler is not None:
                self.scaler.load_state_dict(point.scaler)
            self.best = BestSoFar(**point.best)
        except Exception as exc:  # another model's state fails in many ways: every one is one message
            raise UsageError(f"{folder.resume_file} cannot be resumed from ({first_sentence(exc)}); "
                             f"{folder.LAST} keeps the weights of its last epoch") from None
        self.rows = point.rows
        self.schedule.step = point.step
        self.schedule.apply(self.optimizer)  # the next step's learning rate, from the (possibly changed) config


def read_resume_point(folder: RunFolder) -> ResumePoint | None:
    """The folder's ``resume.pt``, read and checked before anything is built; ``None`` when it has none (the run
    starts from its first epoch).

    Raises:
        UsageError: the file is empty, truncated or not a resume file of a format this version reads.
    """
    path = folder.resume_file
    if not path.is_file():
        return None
    if path.stat().st_size == 0:
        raise UsageError(f"{path} is empty (written by another program, or a file system that lost it); "
                         f"{folder.LAST} keeps the weights of its last epoch")
    try:
        return ResumePoint.read(path, folder.read_metrics())
    except Exception as exc:  # truncated, foreign: every way it can fail is one message
        raise UsageError(f"{path} cannot be resumed from ({first_sentence(exc)}); "
                         f"{folder.LAST} keeps the weights of its last epoch") from None
