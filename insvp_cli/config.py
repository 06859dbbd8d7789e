"""Typed configuration: dataclasses that validate themselves, and ONE resolver.

Precedence: dataclass defaults < recipe YAML < ``--set a.b=value`` overrides. Unknown keys, wrong
types and bad choices raise :class:`~insvp_cli.errors.ConfigError` naming the key path and what
would be valid. The ``method`` group is polymorphic: ``method.name`` picks the registered method,
whose own config dataclass then validates the rest of the group.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError, UsageError

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
        kwargs: extra keyword arguments for ``timm.create_model`` (e.g. ``depth`` for tiny test models).
    """

    name: str = "vit_base_patch16_224.augreg_in21k"
    weights: str = "timm"
    img_size: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Which dataset and how to read it (see :mod:`insvp_cli.data`).

    Attributes:
        name: a registered dataset name (``insvp data check --help`` lists them).
        root: the dataset folder as downloaded; ``None`` for datasets shipped with packages.
        split_dir: folder of ``train.json``/``val.json``/``test.json`` for the FGVC sets (default: root).
        download: let torchvision download the dataset when the machine is online.
        val_fraction: share of the official training set held out for validation where a dataset has
            no official validation split (paper 0.1; the release used 0.2).
        seed: seed of every split.
        classes: keep only these class ids, remapped to 0..K-1 (e.g. ``[5, 6, 7, 8, 9]``).
        image_size: override the backbone's input size for the transforms.
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
    val_fraction: float = 0.1
    seed: int = 0
    classes: list[int] | None = None
    image_size: int | None = None
    resize: Literal["crop", "direct"] = "crop"
    augment: bool = True
    vtab_protocol: Literal["tune", "final"] = "tune"
    batch_size: int = 64
    num_workers: int = 4
    on_bad_image: Literal["error", "skip"] = "error"

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction: {self.val_fraction} is not in (0, 1)")
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size: {self.batch_size} must be >= 1")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers: {self.num_workers} must be >= 0")


@dataclass
class TrainConfig:
    """The optimisation schedule shared by every method (release values in SPEC §1).

    Attributes:
        epochs: training epochs.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay (not applied to biases, norms and prompt tokens).
        warmup_fraction: share of all steps spent in the per-step linear warm-up (release: 20 of 100
            epochs), then cosine to ``min_lr``.
        min_lr: final learning rate of the cosine schedule.
        mixup: Mixup alpha (0 disables).
        cutmix: CutMix alpha (0 disables).
        mix_prob: probability of applying Mixup/CutMix to a batch.
        switch_prob: probability of CutMix instead of Mixup when both are on.
        label_smoothing: label smoothing.
        precision: ``auto`` (bf16 on CUDA, fp32 on CPU), ``fp32``, ``bf16`` or ``fp16`` (with GradScaler).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        seed: seed of the model initialisation and of the data order.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        test_every_epoch: also evaluate the test split every epoch (the release's "best test" curve).
        eval_every: evaluate (and maybe save ``best``) every this many epochs.
    """

    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-3
    warmup_fraction: float = 0.2
    min_lr: float = 1e-6
    mixup: float = 0.8
    cutmix: float = 1.0
    mix_prob: float = 0.5
    switch_prob: float = 0.5
    label_smoothing: float = 0.1
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    test_every_epoch: bool = False
    eval_every: int = 1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"train.epochs: {self.epochs} must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"train.lr: {self.lr} must be > 0")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"train.warmup_fraction: {self.warmup_fraction} is not in [0, 1)")


@dataclass
class MethodConfig:
    """Base of every method's config; ``name`` selects the method in the registry."""

    name: str = DEFAULT_METHOD


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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: {value!r} is not a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {value!r} is not a string")
        return value
    raise TypeError(f"{path}: unsupported annotation {tp!r}")


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, validating every key and value."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {', '.join(f.name for f in dataclasses.fields(cls))}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in data if k not in names]
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; valid keys: {', '.join(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


# --------------------------------------------------------------------------------------------------
# The resolver


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into a key path and a YAML-parsed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not part for part in key.strip().split(".")):
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. train.lr=0.001")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.problem})") from None
    return key.strip().split("."), value


def format_override(key: str, value: Any) -> str:
    """``key=value`` that :func:`parse_override` reads back as exactly ``value``.

    Strings stay as they are when YAML reads them back unchanged (paths read best unquoted); everything
    else is written by YAML itself, so ``1e-05`` becomes ``1.0e-05``, which YAML reads as a float again.
    """
    if isinstance(value, str) and value and yaml.safe_load(value) == value:
        return f"{key}={value}"
    text = yaml.safe_dump(value, default_flow_style=True, width=2**16).strip()
    return f"{key}={text.removesuffix('...').strip()}"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b": value}``; an empty mapping stays a value (``backbone.kwargs: {}``)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


# config keys that say where the files are or how fast a run goes, not what it computes
LOCATION_KEYS = ("data.root", "data.split_dir", "data.num_workers", "data.download", "train.device", "output_dir",
                 "run_name")


def setting_differences(stored: dict[str, Any], wanted: dict[str, Any], limit: int = 3) -> str:
    """What differs between two flattened configs outside :data:`LOCATION_KEYS` (``""``: nothing), e.g.
    ``train.epochs: 8 there, 2 now``; at most ``limit`` keys, then ``...``."""
    keys = sorted((set(stored) | set(wanted)) - set(LOCATION_KEYS))
    differences = [f"{k}: {stored.get(k)!r} there, {wanted.get(k)!r} now" for k in keys
                   if stored.get(k) != wanted.get(k)]
    return "; ".join(differences[:limit]) + (" ..." if len(differences) > limit else "")


def _set_path(tree: dict[str, Any], keys: list[str], value: Any, text: str) -> None:
    node = tree
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {text!r}: {'.'.join(keys[: i + 1])} is a value, not a group")
        node = child
    node[keys[-1]] = value


def load_recipe(path: str | Path) -> dict[str, Any]:
    """Read a recipe YAML file into a mapping (an empty file is an empty recipe)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"recipe {path} does not exist; shipped recipes are in recipes/ (e.g. recipes/svhn.yaml)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"recipe {path}: the top level must be a mapping of groups (backbone, data, method, train)")
    return data


Recipe = str | Path | dict[str, Any]
# a recipe's search space for `insvp sweep` (read by insvp_cli.sweep); it is not part of a run's config
SWEEP_KEY = "sweep"


def recipe_list(recipe: Recipe | Sequence[Recipe] | None) -> list[Recipe]:
    """``None``, one recipe or several, as a list."""
    if recipe is None:
        return []
    return [recipe] if isinstance(recipe, (str, Path, dict)) else list(recipe)


def resolve_config(
    recipe: Recipe | Sequence[Recipe] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """THE resolver: defaults < recipes, in order < ``--set`` overrides.

    Later recipes override earlier ones key by key (``insvp train --recipe R --recipe best.yaml``). The
    ``method`` group follows the method finally selected (the last ``method.name`` of the recipes and
    ``--set``): a recipe's ``method`` keys apply only when they were written for that method B (its ``name``;
    a group without a ``name`` belongs to the method selected before it, the first recipe's to the default
    method). B starts from its own defaults plus the recipes' optional per-method deltas ``methods: {B:
    {...}}``. A ``sweep`` section (the search space of ``insvp sweep``) is not part of the run's config and is
    left out.

    Args:
        recipe: a recipe YAML path, an already-loaded mapping (e.g. from a checkpoint), a list of them
            (later ones win), or None.
        overrides: ``a.b=value`` strings; values are parsed as YAML (``true``, ``0.1``, ``[7, 9, 3]``).

    Returns:
        The validated :class:`Config`.
    """
    from .methods import METHODS  # the method registry imports this module for MethodConfig

    layers = [_deep_copy(r) if isinstance(r, dict) else load_recipe(r) for r in recipe_list(recipe)]
    override_tree: dict[str, Any] = {}
    for text in overrides:
        keys, value = parse_override(text)
        _set_path(override_tree, keys, value, text)

    tree: dict[str, Any] = {}
    per_method: dict[str, dict[str, Any]] = {}
    groups: list[tuple[str, dict[str, Any]]] = []  # each recipe's method group and the method it was written for
    name = DEFAULT_METHOD
    for layer in layers:
        layer.pop(SWEEP_KEY, None)
        deltas = layer.pop("methods", None) or {}
        if not isinstance(deltas, dict) or any(not isinstance(v, dict) for v in deltas.values()):
            raise ConfigError("methods: expected a mapping of method name -> its hyper-parameters")
        for other, delta in deltas.items():
            per_method[other] = {**per_method.get(other, {}), **delta}
        group = _group(layer, "method")
        layer.pop("method", None)
        name = group.get("name", name)
        groups.append((name, group))
        tree = _merge(tree, layer)
    override_method = _group(override_tree, "method")
    override_tree.pop("method", None)
    name = override_method.get("name", name)
    if not isinstance(name, str) or name not in METHODS:
        raise ConfigError(f"method.name: unknown method {name!r}; valid: {', '.join(METHODS.names())}")
    for other, delta in per_method.items():  # typos in deltas of unselected methods are errors too
        if other not in METHODS:
            raise ConfigError(f"methods.{other}: unknown method; valid: {', '.join(METHODS.names())}")
        build_dataclass(METHODS.get(other).config_cls, {**delta, "name": other}, f"methods.{other}")
    method_tree = dict(per_method.get(name, {}))
    for written_for, group in groups:  # keys written for another method do not apply
        if written_for == name:
            method_tree.update(group)
    method_tree.update(override_method)
    method_tree["name"] = name
    tree = _merge(tree, override_tree)
    tree["method"] = build_dataclass(METHODS.get(name).config_cls, method_tree, "method")
    return build_dataclass(Config, tree, "")


def _group(tree: dict[str, Any], key: str) -> dict[str, Any]:
    group = tree.get(key, {})
    if not isinstance(group, dict):
        raise ConfigError(f"{key}: expected a mapping, e.g. {key}: {{name: insvp}}")
    return group


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}
