"""DAM-VP's meta-prompt initialisation: Reptile over meta datasets, diversity-aware (Huang et al., CVPR 2023, §3.3).

Learned from DAM-VP's ``meta-training/meta_ht.py`` (head-tuning variant), written anew:

- every meta dataset is clustered like the downstream one (its own prototypes, ``num_clusters`` of them)
  and gets its own linear head, kept across meta steps;
- a meta step takes one batch of every meta dataset; for each, every cluster prompt starts from the meta
  prompt and takes ``meta_inner_steps`` SGD steps on that batch (prompts at the step's learning rate with
  ``meta_weight_decay``, the head at lr 0.1 without decay), each image prompted by its cluster's prompt;
- the meta prompt then moves ``meta_step_size`` times the mean, over all datasets and clusters, of
  (adapted cluster prompt - meta prompt) (Reptile);
- the inner learning rate follows a cosine from ``meta_lr`` to 0 over all meta steps, without warm-up.

DAM-VP keeps the meta prompt of the lowest training loss seen; ours keeps the last one. Under ``torchrun`` the meta
datasets are dealt out to the processes and the Reptile moves summed over them; the forwards run under the run's
autocast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...backbone import data_config
from ...backbone.vit import pool
from ...config.schema import DataConfig
from ...data.loaders import ImageLoader
from ...data.splits import build_splits
from ..base import TrainingData
from ..vp.model import PadPrompt
from .prototypes import nearest_prototype

_HEAD_LR = 0.1  # DAM-VP's learning rate of the per-dataset heads


class _Task:
    """One meta dataset: its shuffled training loader, its cluster prototypes and its head."""

    def __init__(self, model: nn.Module, cfg: DataConfig, data: TrainingData):
        splits = build_splits(cfg, data_config(model.backbone))
        train = splits.train.with_transform(splits.test.transform)
        common = dict(batch_size=cfg.batch_size, num_workers=cfg.num_workers, on_bad_image=cfg.on_bad_image)
        self.loader = ImageLoader(train, shuffle=True, **common)
        # clustered augmented, as the downstream set (DAM-VP clusters the batches of its training loaders), by this
        # process alone (DistInfo(): no gathering, the other processes cluster their own datasets)
        alone = TrainingData(data.loader, data.classes, data.device, precision=data.precision)
        features = model.features_of(ImageLoader(splits.train, shuffle=False, **common), alone)
        self.prototypes = model.cluster(features).to(data.device)
        self.head = nn.Linear(model.backbone.num_features, len(splits.classes)).to(data.device)


def meta_train(model: nn.Module, datasets: list[DataConfig], data: TrainingData) -> None:
    """Meta-train the shared starting prompt of ``model`` (a DAM-VP) on ``datasets``; copy it to every cluster.

    Process ``r`` of ``R`` takes datasets ``r, r + R, ...``; each meta step sums the moves of every process."""
    cfg, frames, device, dist = model.cfg, model.damvp.frames, data.device, data.dist
    tasks = [_Task(model, d, data) for d in datasets[dist.rank::dist.world_size]]
    count, _, height, width = frames().shape
    meta = PadPrompt(height, width, frames.pad).to(device)
    with torch.no_grad():
        for target, source in zip(meta.parameters(), frames.parameters(), strict=True):
            target.copy_(source[:1])
    lengths = torch.zeros(len(datasets), dtype=torch.int64, device=device)
    lengths[dist.rank::dist.world_size] = torch.tensor([len(task.loader) for task in tasks], dtype=torch.int64)
    steps_per_epoch = int(data.sum(lengths).min())
    total, step = cfg.meta_epochs * steps_per_epoch, 0
    model.eval()  # the backbone stays in eval mode; only prompts and heads learn
    for _ in range(cfg.meta_epochs):
        iterators = [iter(task.loader) for task in tasks]
        for _ in range(steps_per_epoch):
            lr = 0.5 * (1 + math.cos(math.pi * step / total)) * cfg.meta_lr
            moves = [torch.zeros_like(p) for p in meta.parameters()]
            for task, batches in zip(tasks, iterators, strict=True):
                images, labels = (t.to(device) for t in next(batches))
                fast = _adapt(model, meta, task, images, labels, lr, count, data)
                for move, adapted, start in zip(moves, fast.parameters(), meta.parameters(), strict=True):
                    move += (adapted - start).sum(dim=0, keepdim=True).detach()  # sum over the clusters
            with torch.no_grad():
                for start, move in zip(meta.parameters(), moves, strict=True):
                    start += cfg.meta_step_size * data.sum(move) / (count * len(datasets))
            step += 1
    with torch.no_grad():
        for target, source in zip(frames.parameters(), meta.parameters(), strict=True):
            target.copy_(source.expand_as(target))


def _adapt(model: nn.Module, meta: PadPrompt, task: _Task, images: torch.Tensor, labels: torch.Tensor,
           lr: float, count: int, data: TrainingData) -> PadPrompt:
    """The cluster prompts of one meta dataset after ``meta_inner_steps`` SGD steps on one batch, from ``meta``."""
    fast = PadPrompt(*images.shape[-2:], meta.pad, count=count).to(images.device)
    with torch.no_grad():
        for target, source in zip(fast.parameters(), meta.parameters(), strict=True):
            target.copy_(source.expand_as(target))
    optimizer = torch.optim.SGD([
        {"params": fast.parameters(), "lr": lr, "weight_decay": model.cfg.meta_weight_decay},
        {"params": task.head.parameters(), "lr": _HEAD_LR, "weight_decay": 0.0},
    ])
    with data.autocast():
        clusters = nearest_prototype(model.frozen_features(images), task.prototypes)
    for _ in range(model.cfg.meta_inner_steps):
        with torch.enable_grad(), data.autocast():
            # (n, 3, H, W)[cluster of each image] -> (B, 3, H, W)
            prompted = images + fast()[clusters]
            loss = F.cross_entropy(task.head(pool(model.backbone, model.backbone.forward_features(prompted))), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return fast
