"""Typed configuration: dataclasses that validate themselves, and the coercion that builds them from YAML.

This is the bottom layer: it imports neither torch nor the methods. Every numeric key carries its valid
range (:func:`bounded`) and every choice its set (``Literal``); :func:`build_dataclass` checks both, so a
bad value is an error that names the key path and what would be valid before any work starts. The
resolver that layers defaults < recipes < ``--set`` is :mod:`insvp_cli.resolve`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import yaml

from .errors import ConfigError
from .protocol import Protocol, shared_grid

DEFAULT_METHOD = "insvp"


@dataclass(frozen=True)
class Bounds:
    """The valid range of a numeric config value (any bound may be absent)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        low = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None
        high = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>=' if self.ge is not None else '>'} {low[1:]}"
        return f"{'<=' if self.le is not None else '<'} {high[:-1]}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def bounded(default: Any = None, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, default_factory: Any = None) -> Any:
    """A dataclass field whose value (or each item of a list value) must lie in the given range; ``None`` passes.

    Example: ``lr: float = bounded(1e-3, gt=0)``.
    """
    meta = {"bounds": Bounds(ge, gt, le, lt)}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class BackboneConfig:
    """The frozen pretrained model.

    Attributes:
        name: a timm model name, optionally with a pretrained tag (``vit_base_patch16_224.augreg_in21k``).
        weights: ``timm`` (the tag's pretrained weights, downloaded by timm when online), ``none``
            (random init: tests, ``insvp params``), or a local file (``.safetensors``, ``.pth``/``.pt``,
            a MoCo v3 ``.pth.tar``, Google ``.npz``).
        img_size: input resolution if not the model's default (must be divisible by the patch size).
        kwargs: extra keyword arguments for ``timm.create_model`` (e.g. ``depth`` for tiny test models).
    """

    name: str = "vit_base_patch16_224.augreg_in21k"
    weights: str = "timm"
    img_size: int | None = bounded(None, ge=1)
    kwargs: dict[str, Any] = field(default_factory=dict)


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
        num_workers: data-loader worker processes.
        on_bad_image: ``error`` stops at an unreadable image; ``skip`` drops it and reports the count.
    """

    name: str = "mnist5k"
    root: str | None = None
    split_dir: str | None = None
    download: bool = False
    val_fraction: float = bounded(0.1, gt=0, lt=1)
    seed: int = bounded(0, ge=0)
    classes: list[int] | None = bounded(None, ge=0)
    shots: int | None = bounded(None, ge=1)
    shot_seed: int = bounded(0, ge=0)
    hierarchy: str | None = None
    image_size: int | None = bounded(None, ge=1)
    resize: Literal["crop", "direct"] = "crop"
    augment: bool = True
    vtab_protocol: Literal["tune", "final"] = "tune"
    batch_size: int = bounded(64, ge=1)
    num_workers: int = bounded(4, ge=0)
    on_bad_image: Literal["error", "skip"] = "error"


_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass
class TrainConfig:
    """The optimisation: by default the shared protocol of every method (the release's values: docs/method.md);
    a method's published protocol sets its own (:mod:`insvp_cli.protocol`).

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
        precision: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32``, ``bf16`` or ``fp16`` (with GradScaler).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        seed: seed of the model initialisation and of the data order.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        test_every_epoch: also evaluate the test split every epoch (the release's "best test" curve).
        eval_every: evaluate (and maybe save ``best``) every this many epochs.
        compile: train through ``torch.compile`` (the first steps compile; evaluation and checkpoints use the
            model as built). Worth it on CUDA for long runs; on CPU it needs a C++ compiler.
        loggers: also write every epoch's row through ``tensorboard`` and/or ``mlflow`` (optional extras;
            :mod:`insvp_cli.loggers`).
    """

    epochs: int = bounded(100, ge=1)
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(1e-3, ge=0)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    momentum: float = bounded(0.9, ge=0, lt=1)
    schedule: Literal["cosine", "multistep"] = "cosine"
    milestones: list[float] = bounded(default_factory=list, gt=0, lt=1)
    gamma: float = bounded(0.1, gt=0, le=1)
    warmup_fraction: float = bounded(0.2, ge=0, lt=1)
    min_lr: float = bounded(1e-6, ge=0)
    mixup: float = bounded(0.8, ge=0)
    cutmix: float = bounded(1.0, ge=0)
    mix_prob: float = bounded(0.5, ge=0, le=1)
    switch_prob: float = bounded(0.5, ge=0, le=1)
    label_smoothing: float = bounded(0.1, ge=0, lt=1)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    grad_clip: float | None = bounded(None, gt=0)
    seed: int = bounded(0, ge=0)
    device: str = "auto"
    test_every_epoch: bool = False
    eval_every: int = bounded(1, ge=1)
    compile: bool = False
    loggers: list[Literal["tensorboard", "mlflow"]] = field(default_factory=list)

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
        else the shared protocol's (:func:`~insvp_cli.protocol.shared_grid`)."""
        return self.published.grid(batch_size) if self.protocol == "published" else shared_grid()

    def embeddings(self) -> tuple[str, ...]:
        """What ``Method.embed`` can return for this config, for figures: ``features`` always, plus the
        method's own (e.g. InsVP's ``specific-prompt``). Known from the config alone, no model built."""
        return ("features",)

    def requires(self) -> tuple[str, ...]:
        """What the method needs from the data beyond images and labels: names of
        :data:`insvp_cli.requirements.NEEDS` (e.g. TransHP's ``hierarchy``), checked before any work starts."""
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

# a float as people write it: YAML 1.1 (what PyYAML reads) parses `1e-3` as a string, not a number
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Return ``value`` checked against the annotation ``tp`` (ints widen to floats)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: {value!r} is not of type {' | '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not a valid choice; valid: {', '.join(map(str, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: {value!r} is not a list")
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {value!r} is not a mapping")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {value!r} is not a boolean (true/false)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: {value!r} is not an integer")
        return value
    if tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: {value!r} is not a number")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: {value!r} is not a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {value!r} is not a string")
        return value
    raise TypeError(f"{path}: unsupported annotation {tp!r}")


def _check_bounds(value: Any, bounds: Bounds, path: str) -> None:
    for i, item in enumerate(value if isinstance(value, list) else [value]):
        if item is not None and not bounds.contains(item):
            where = f"{path}[{i}]" if isinstance(value, list) else path
            raise ConfigError(f"{where}: {item} is not {bounds.describe()}")


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, validating every key, type and range."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {', '.join(f.name for f in dataclasses.fields(cls))}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; valid keys: {', '.join(fields)}")
    kwargs = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else key
        kwargs[key] = _coerce(value, hints[key], key_path)
        if "bounds" in fields[key].metadata:
            _check_bounds(kwargs[key], fields[key].metadata["bounds"], key_path)
    return cls(**kwargs)
