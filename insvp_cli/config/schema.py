"""Typed configuration: dataclasses that validate themselves, and the coercion that builds them from YAML.

This is the bottom layer: it imports neither torch nor the methods. Every numeric key carries its valid
range with both ends (:func:`bounded`; the shared upper ends and why: :mod:`.limits`) and every choice its set
(``Literal``); :func:`build_dataclass` checks both, so a bad value is an error that names the key path and what
would be valid before any work starts. The resolver that layers defaults < recipes < ``--set`` is
:mod:`insvp_cli.resolve.layers`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import yaml

from ..common.errors import ConfigError
from .coerce import bounded
from .limits import (
    MAX_BATCH,
    MAX_BLOCKS,
    MAX_CACHE_GB,
    MAX_CLASSES,
    MAX_COUNT,
    MAX_EPOCHS,
    MAX_FACTOR,
    MAX_IMAGE_SIZE,
    MAX_WIDTH,
    MAX_WORKERS,
    SEED_MAX,
)
from .protocols import Protocol, shared_grid

DEFAULT_METHOD = "insvp"


@dataclass
class BackboneConfig:
    """The frozen pretrained model.

    Attributes:
        name: a timm model name, optionally with a pretrained tag (``vit_base_patch16_224.augreg_in21k``).
        weights: ``timm`` (the tag's pretrained weights, downloaded by timm when online), ``none``
            (random init: tests, ``insvp params``), or a local file (``.safetensors``, ``.pth``/``.pt``,
            a MoCo v3 ``.pth.tar``, Google ``.npz``).
        img_size: input resolution if not the model's default (must be divisible by the patch size).
        kwargs: extra keyword arguments for ``timm.create_model`` (e.g. ``depth`` for tiny test models); integers in
            ``[0, MAX_WIDTH]``, block counts (``depth``, ``depths``) at most ``MAX_BLOCKS`` (:mod:`.limits`); what
            the architecture then weighs is checked against the machine before it is built.
    """

    name: str = "vit_base_patch16_224.augreg_in21k"
    weights: str = "timm"
    img_size: int | None = bounded(None, ge=1, le=MAX_IMAGE_SIZE)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in self.kwargs.items():
            high = MAX_BLOCKS if key in ("depth", "depths") else MAX_WIDTH
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, int) and not isinstance(item, bool) and not 0 <= item <= high:
                    raise ConfigError(f"backbone.kwargs.{key}: {item} is not in [0, {high}]")


@dataclass
class DataConfig:
    """Which dataset and how to read it (see :mod:`insvp_cli.data`).

    Attributes:
        name: a registered dataset name (``insvp data list`` lists them).
        root: the dataset folder as downloaded; ``None`` for datasets shipped with packages.
        split_dir: folder of ``train.json``/``val.json``/``test.json`` for the FGVC sets (default: the files in
            root if there are, else VPT's splits shipped with insvp).
        download: let torchvision download the dataset when the machine is online.
        val_fraction: share of the official training set held out for validation where a dataset has
            no official validation split (paper 0.1; the release used 0.2).
        seed: seed of every split.
        classes: keep only these class ids, remapped to 0..K-1 (e.g. ``[5, 6, 7, 8, 9]``).
        shots: few-shot training: keep ``shots`` training images of each class (>= 1; all of a class with fewer;
            ``None``: every image); validation and test stay whole (NOAH's FGVC protocol: 1, 2, 4, 8, 16).
        shot_seed: which ``shots`` images (>= 0): the same seed picks the same images, and a class's pick does not
            depend on the other classes.
        hierarchy: a YAML or JSON file mapping each class (by name, or by label index) to a coarse label, for
            methods that need a coarse-label hierarchy (TransHP); ``None``: ``hierarchy.yaml`` (or ``.json``) in
            ``data.root`` if there is one, else the dataset's built-in hierarchy (CIFAR-100's 20 superclasses).
        image_size: the transforms' output size if not the backbone's input size (only for backbones that
            take other sizes).
        resize: ``crop`` (resize then crop, VPT style) or ``direct`` (resize straight to size, VTAB style).
        augment: random crop and flip during training.
        vtab_protocol: VTAB-1k only (``data.name: vtab``, ``data.root`` = the task folder): ``tune`` trains on
            ``train800`` and selects on ``val200``; ``final`` trains on ``train800val200`` (the paper's runs),
            with ``val200``, a part of that training set, standing in for the validation split.
        batch_size: per-process batch size.
        num_workers: data-loader worker processes; ``None`` (the default): the CPUs each process may use, less one,
            at most 16 (:func:`insvp_cli.runtime.cpus.loader_workers`). Results do not depend on it.
        cache_gb: splits whose images, decoded and resized, fit in this many GiB together (per process) are decoded
            once before training and kept in memory as uint8 tensors (:mod:`insvp_cli.data.cache`); 0 reads every
            image from its file every epoch. Results do not depend on it.
        on_bad_image: ``error`` stops at an unreadable image; ``skip`` drops it and reports the count.
    """

    name: str = "mnist5k"
    root: str | None = None
    split_dir: str | None = None
    download: bool = False
    val_fraction: float = bounded(0.1, gt=0, lt=1)
    seed: int = bounded(0, ge=0, le=SEED_MAX)
    classes: list[int] | None = bounded(None, ge=0, lt=MAX_CLASSES)
    shots: int | None = bounded(None, ge=1, le=MAX_COUNT)
    shot_seed: int = bounded(0, ge=0, le=SEED_MAX)
    hierarchy: str | None = None
    image_size: int | None = bounded(None, ge=1, le=MAX_IMAGE_SIZE)
    resize: Literal["crop", "direct"] = "crop"
    augment: bool = True
    vtab_protocol: Literal["tune", "final"] = "tune"
    batch_size: int = bounded(64, ge=1, le=MAX_BATCH)
    num_workers: int | None = bounded(None, ge=0, le=MAX_WORKERS)
    cache_gb: float = bounded(4.0, ge=0, le=MAX_CACHE_GB)
    on_bad_image: Literal["error", "skip"] = "error"


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass
class TrainConfig:
    """The optimisation: by default the shared protocol of every method (the release's values: docs/method.md);
    a method's published protocol sets its own (:mod:`insvp_cli.config.protocols`).

    Attributes:
        epochs: training epochs.
        lr: peak learning rate.
        weight_decay: weight decay of the tensors the method decays (by default not biases, norms and prompt
            tokens).
        optimizer: ``adamw`` (decoupled weight decay), ``adam`` (weight decay as an L2 term in the gradient, as
            ``torch.optim.Adam``) or ``sgd`` (with ``momentum``).
        momentum: SGD's momentum.
        schedule: ``cosine`` (to ``min_lr``) or ``multistep`` (the learning rate times ``gamma`` at each of
            ``milestones``), both after the linear warm-up.
        milestones: where ``multistep`` multiplies the learning rate by ``gamma``, as fractions of the epochs
            (ILM-VP: ``[0.5, 0.72]``, i.e. ``int(0.5 * epochs)`` ...).
        gamma: the factor of each milestone.
        warmup_fraction: share of all steps spent in the per-step linear warm-up (release: 20 of 100
            epochs).
        min_lr: final learning rate of the cosine schedule (at most ``lr``).
        mixup: Mixup alpha (0 disables).
        cutmix: CutMix alpha (0 disables).
        mix_prob: probability of applying Mixup/CutMix to a batch.
        switch_prob: probability of CutMix instead of Mixup when both are on.
        label_smoothing: label smoothing.
        precision: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32``, ``bf16`` (autocast, on CUDA and on the CPU) or
            ``fp16`` (with GradScaler).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        seed: seed of the model initialisation and of the data order.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        test_every_epoch: also evaluate the test split every epoch (the release's "best test" curve).
        eval_every: evaluate (and maybe save ``best``) every this many epochs.
        compile: train through ``torch.compile`` (the first steps compile; evaluation and checkpoints use the
            model as built). Worth it on CUDA for long runs; on CPU it needs a C++ compiler.
        loggers: also write every epoch's row through ``tensorboard`` and/or ``mlflow`` (optional extras;
            :mod:`insvp_cli.train.loggers`).
        tf32: on CUDA, float32 matrix products and convolutions in TF32 (``set_float32_matmul_precision("high")``)
            and cuDNN's benchmark mode (the fastest convolution algorithms for the shapes seen); no effect on the CPU.
        deterministic: deterministic algorithms only (``torch.use_deterministic_algorithms``; on CUDA also no cuDNN
            benchmark mode and cuBLAS's fixed workspace; InsVP's ``G_s`` pooling as ``max_pool2d``), so that a run and
            its resumed copy give the same numbers on CUDA too, as they do on the CPU anyway (slower there; an
            operation without a deterministic version stops the run).
    """

    epochs: int = bounded(100, ge=1, le=MAX_EPOCHS)
    lr: float = bounded(1e-3, gt=0, le=MAX_FACTOR)
    weight_decay: float = bounded(1e-3, ge=0, le=MAX_FACTOR)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    momentum: float = bounded(0.9, ge=0, lt=1)
    schedule: Literal["cosine", "multistep"] = "cosine"
    milestones: list[float] = bounded(default_factory=list, gt=0, lt=1)
    gamma: float = bounded(0.1, gt=0, le=1)
    warmup_fraction: float = bounded(0.2, ge=0, lt=1)
    min_lr: float = bounded(1e-6, ge=0, le=MAX_FACTOR)
    mixup: float = bounded(0.8, ge=0, le=MAX_FACTOR)
    cutmix: float = bounded(1.0, ge=0, le=MAX_FACTOR)
    mix_prob: float = bounded(0.5, ge=0, le=1)
    switch_prob: float = bounded(0.5, ge=0, le=1)
    label_smoothing: float = bounded(0.1, ge=0, lt=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    grad_clip: float | None = bounded(None, gt=0, le=MAX_FACTOR)
    seed: int = bounded(0, ge=0, le=SEED_MAX)
    device: str = "auto"
    test_every_epoch: bool = False
    eval_every: int = bounded(1, ge=1, le=MAX_EPOCHS)
    compile: bool = False
    loggers: list[Literal["tensorboard", "mlflow"]] = field(default_factory=list)
    tf32: bool = True
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.min_lr > self.lr:
            raise ConfigError(f"train.min_lr: {self.min_lr} is above train.lr {self.lr}; the cosine decays to it")
        if not _DEVICE.fullmatch(self.device):
            raise ConfigError(f"train.device: {self.device!r} is not valid; valid: auto, cpu, cuda, cuda:N, mps")
        if self.milestones != sorted(self.milestones):
            raise ConfigError(f"train.milestones: {self.milestones} are not in increasing order")

    def describe(self) -> str:
        """The protocol in a line: ``sgd (momentum 0.9) lr 0.1 wd 0.0001, cosine, 100 epochs, warm-up 0.1``."""
        optimizer = f"sgd (momentum {self.momentum:g})" if self.optimizer == "sgd" else self.optimizer
        schedule = (f"multistep x{self.gamma:g} at {', '.join(f'{m:g}' for m in self.milestones)}"
                    if self.schedule == "multistep" else "cosine")
        mix = f", mixup {self.mixup:g} cutmix {self.cutmix:g}" if self.mixup or self.cutmix else ""
        smooth = f", smoothing {self.label_smoothing:g}" if self.label_smoothing else ""
        return (f"{optimizer} lr {self.lr:g} wd {self.weight_decay:g}, {schedule}, {self.epochs} epochs, "
                f"warm-up {self.warmup_fraction:g}{mix}{smooth}")


@dataclass
class MethodConfig:
    """Base of every method's config; ``name`` selects the method in the registry (``insvp_cli.methods``).

    Attributes:
        name: the registered method.
        head_init: the classification head's initialisation: ``torch`` (PyTorch's ``nn.Linear`` default),
            ``vpt`` (VPT's MLP head, which VPT's comparison gives every method: Kaiming-normal fan-out
            weights, bias ``-log((1 - 0.01) / 0.01)``) or ``trunc_normal`` (weights ``trunc_normal_(std=0.01)``,
            bias 0: MoCo v3's linear probe, which AdaptFormer's code uses).
        head_norm: a BatchNorm without affine parameters (eps 1e-6) before the head's linear layer, as MAE's
            and AdaptFormer's code probe (the head is then ``Sequential(norm, linear)``).
        protocol: ``shared`` (the release's AdamW protocol, the same for every method) or ``published`` (the
            method's own, as its authors trained it: :attr:`published`, docs/protocols.md).
        weight_decay_skip: ``fnmatch`` patterns of the trainable tensors that get no weight decay, replacing the
            method's own rule (every 1-D tensor and its ``no_weight_decay()`` names); e.g. ``[head.bias]``, VPT's
            solver. ``None``: the method's rule.
    """

    name: str = DEFAULT_METHOD
    head_init: Literal["torch", "vpt", "trunc_normal"] = "torch"
    head_norm: bool = False
    protocol: Literal["shared", "published"] = "shared"
    weight_decay_skip: list[str] | None = None
    # the backbone keeps its pretrained classifier: the source label space of label-mapping methods (ILM-VP)
    keep_backbone_classifier: ClassVar[bool] = False
    # how the method's authors trained it (`protocol: published`); a method without one trains as shared
    published: ClassVar[Protocol] = Protocol(source="the shared protocol (no published one)")
    # the rows of the paper's tables that this method stands for, each with the overrides that make it that row
    # (``{"Partial-1": ("method.blocks=1",)}``); read by `insvp reproduce`
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @classmethod
    def dataset_defaults(cls, data: DataConfig) -> dict[str, Any]:
        """Hyper-parameters the method's authors published for the dataset of ``data`` (e.g. E2VPT's token counts),
        applied over the method's defaults and under every recipe and ``--set`` key; none by default."""
        return {}

    def default_grid(self, batch_size: int) -> dict[str, list[Any]]:
        """``insvp sweep``'s search space when none is given: the published protocol's grid under ``published``,
        else the shared protocol's (:func:`~insvp_cli.config.protocols.shared_grid`)."""
        return self.published.grid(batch_size) if self.protocol == "published" else shared_grid()

    def embeddings(self) -> tuple[str, ...]:
        """What ``Method.embed`` can return for this config, for figures: ``features`` always, plus the
        method's own (e.g. InsVP's ``specific-prompt``). Known from the config alone, no model built."""
        return ("features",)

    def requires(self) -> tuple[str, ...]:
        """What the method needs from the data beyond images and labels: names of
        :data:`insvp_cli.resolve.needs.NEEDS` (e.g. TransHP's ``hierarchy``), checked before any work starts."""
        return ()

    def with_data(self, provided: Mapping[str, Any]) -> MethodConfig:
        """This config with the values that follow from what the data provides (``provided[name]`` for each name
        of :meth:`requires`) filled in, e.g. TransHP's number of coarse classes; the default changes nothing."""
        return self


@dataclass
class Config:
    """The whole resolved configuration of a run. Written to the run folder and into checkpoints."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs"
    run_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --------------------------------------------------------------------------------------------------
# Building dataclasses from plain data, with errors that name the key path
