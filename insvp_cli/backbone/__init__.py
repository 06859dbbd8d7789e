"""The frozen pretrained backbone: any timm ViT-family model, with weights from timm, a local file or none.

Wraps timm through its public surface (``create_model``, ``checkpoint_filter_fn``,
``resolve_model_data_config``); nothing of timm's model code is copied.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import timm
import torch
from torch import nn

from ..config import BackboneConfig
from ..errors import UsageError

LOCAL_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".pth.tar", ".npz")
_STATE_DICT_WRAPPERS = ("state_dict", "model", "module")
MOCO_V3_PREFIX = "module.base_encoder."
# the parts of MoCo v3's pre-training model that are not the backbone: projector, momentum encoder, predictor
_MOCO_V3_DROPPED = (f"{MOCO_V3_PREFIX}head.", "module.momentum_encoder.", "module.predictor.")


def create_backbone(cfg: BackboneConfig, keep_classifier: bool = False) -> nn.Module:
    """Create the timm model named by ``cfg.name`` with the weights ``cfg.weights`` and freeze it.

    The classifier head is removed (``num_classes=0``): every method owns its own head. With
    ``keep_classifier`` (label-mapping methods, whose source label space it is) the model keeps the
    classifier its weights come with: a timm tag's pretrained head, the head of a local state dict, or for
    ``weights: none`` the architecture's default head at random init; a tag or file without one (and any
    ``.npz`` file) gives a headless model (``num_classes == 0``).

    Raises:
        UsageError: unknown model name (with close names), an input size the patches do not tile, an
            unreachable hub without cached weights, a missing file, or keys that do not match.
    """
    kwargs = dict(cfg.kwargs)
    if cfg.img_size is not None:
        kwargs["img_size"] = cfg.img_size
    arch = cfg.name.split(".")[0]
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=6, cutoff=0.6)
        hint = f"; close names: {', '.join(close)}" if close else "; timm.list_models() lists them"
        raise UsageError(f"backbone.name: {cfg.name!r} is not a timm model{hint}")
    weights = cfg.weights
    headless = {**kwargs, "num_classes": 0}
    try:
        if weights == "timm":
            model = _create_from_hub(cfg.name, kwargs if keep_classifier else headless)
        else:
            # a fixed seed makes "random init" reproducible, so checkpoints on it can be evaluated again
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                default_head = keep_classifier and weights == "none"
                model = timm.create_model(cfg.name, pretrained=False, **(kwargs if default_head else headless))
    except TypeError as exc:  # a kwargs key the architecture does not take
        raise UsageError(f"backbone.kwargs: {cfg.name} does not take them ({exc})") from None
    _check_input_size(model, cfg)
    if weights not in ("timm", "none"):
        classifier = load_local_weights(model, resolve_weights_path(weights))
        if keep_classifier and classifier:
            _attach_classifier(model, classifier)
    freeze(model)
    return model


def _check_input_size(model: nn.Module, cfg: BackboneConfig) -> None:
    """A ViT's patches must tile its input exactly (timm would fail later, deep inside a forward)."""
    embed = getattr(model, "patch_embed", None)
    size, patch = getattr(embed, "img_size", None), getattr(embed, "patch_size", None)
    if size is None or patch is None:
        return
    if any(s % p for s, p in zip(size, patch, strict=True)):
        raise UsageError(f"backbone.img_size: {tuple(size)} is not a multiple of {cfg.name}'s patch size "
                         f"{tuple(patch)}; use e.g. {tuple(s // p * p for s, p in zip(size, patch, strict=True))}")


def check_data_size(model: nn.Module, image_size: int | None) -> None:
    """``data.image_size`` must be the backbone's input size, unless the backbone takes any size.

    Raises:
        UsageError: the sizes differ for a fixed-size backbone.
    """
    if image_size is None:
        return
    expected = tuple(data_config(model)["input_size"][1:])
    dynamic = getattr(getattr(model, "patch_embed", None), "dynamic_img_size", False)
    if (image_size, image_size) != expected and not dynamic:
        raise UsageError(f"data.image_size: {image_size} but the backbone takes {expected[0]}x{expected[1]} inputs; "
                         f"leave data.image_size unset, or set backbone.img_size={image_size} as well")


def resolve_weights_path(weights: str) -> Path:
    """A local weights path; ``asset:NAME`` names a file shipped in ``insvp_cli/assets/``."""
    if weights.startswith("asset:"):
        return Path(__file__).resolve().parents[1] / "assets" / weights.removeprefix("asset:")
    return Path(weights).expanduser()


def freeze(model: nn.Module) -> None:
    """Stop gradients into ``model``'s weights and put it in eval mode (no dropout / drop-path)."""
    model.requires_grad_(False)
    model.eval()


def data_config(model: nn.Module) -> dict[str, Any]:
    """Mean, std, interpolation and crop fraction from the model's pretrained cfg; input size as built."""
    cfg = timm.data.resolve_model_data_config(model)
    img_size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if img_size is not None:  # an img_size override changes the input, not the pretrained cfg
        cfg["input_size"] = (cfg["input_size"][0], *img_size)
    return cfg


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One fast TCP probe of the Hugging Face endpoint, so an offline machine fails in seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _create_from_hub(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """timm's pretrained weights: downloaded when the hub answers, else read from the Hugging Face cache."""
    try:
        if _hub_reachable():
            return timm.create_model(name, pretrained=True, **kwargs)
        cached = _cached_weights(name)
        if cached is None:
            raise UsageError(
                f"backbone.weights=timm: the hub is unreachable and the weights of {name!r} are not cached; pass a "
                f"local file instead: --set backbone.weights=PATH (.safetensors, .pth, .pt or .npz), or "
                f"--set backbone.weights=none for random init")
        overlay = {"file": cached, "custom_load": cached.endswith(".npz")}
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    except (OSError, RuntimeError, ValueError) as exc:
        raise UsageError(
            f"backbone.weights=timm: could not load {name!r} ({type(exc).__name__}: {first_sentence(exc)}); "
            f"pass a local file instead: --set backbone.weights=PATH, or --set backbone.weights=none"
        ) from exc


def _cached_weights(name: str) -> str | None:
    """The file of ``name``'s pretrained weights in the local Hugging Face cache, if it is there."""
    from huggingface_hub import try_to_load_from_cache

    pretrained = timm.models.get_pretrained_cfg(name)
    repo = getattr(pretrained, "hf_hub_id", None)
    if not repo:
        return None
    names = [pretrained.hf_hub_filename] if getattr(pretrained, "hf_hub_filename", None) else []
    for filename in (*names, "model.safetensors", "pytorch_model.bin"):
        path = try_to_load_from_cache(repo, filename)
        if isinstance(path, str):
            return path
    return None


def read_state_dict(path: Path, what: str = "backbone.weights") -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``; never unpickles code).

    Unwraps ``{"state_dict": ...}`` / ``{"model": ...}`` containers. ``what`` starts the error messages.
    """
    if not path.is_file():
        raise UsageError(f"{what}: {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickled code, truncated files and non-torch files fail in many ways
        raise UsageError(f"{what}: {path} is not a readable torch weights file ({first_sentence(exc)})") from None
    while isinstance(obj, dict):
        wrapper = next((k for k in _STATE_DICT_WRAPPERS if k in obj and isinstance(obj[k], dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UsageError(f"{what}: {path} holds no state dict of tensors")
    return obj


def load_local_weights(model: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Load a local weights file into the headless ``model``; any missing or unexpected non-head key is an error.

    Besides timm's own layout this reads Google's ``.npz`` files and MoCo v3 pre-training checkpoints
    (recognised by their ``module.base_encoder.`` keys, see :func:`from_moco_v3`).

    Returns:
        The classifier tensors the file holds besides (e.g. ``head.weight``, ``head.bias``); empty for a
        headless file and for ``.npz`` files.
    """
    if not path.name.endswith(LOCAL_WEIGHT_SUFFIXES):
        raise UsageError(
            f"backbone.weights: {path} has an unknown suffix; valid: timm, none, or a file ending in "
            f"{', '.join(LOCAL_WEIGHT_SUFFIXES)}"
        )
    if path.suffix == ".npz":
        _load_npz(model, path)
        return {}
    state_dict = read_state_dict(path)
    if any(k.startswith(MOCO_V3_PREFIX) for k in state_dict):
        state_dict, _ = from_moco_v3(state_dict)
    state_dict = _timm_filter(model, state_dict)
    head = _classifier_prefixes(model)
    classifier = {k: v for k, v in state_dict.items() if k.startswith(head)}
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith(head)}
    result = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(head)]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        raise UsageError(
            f"backbone.weights: {path} does not fit {type(model).__name__}: "
            f"missing keys {_short(missing)}; unexpected keys {_short(unexpected)}"
        )
    return classifier


def _attach_classifier(model: nn.Module, classifier: dict[str, torch.Tensor]) -> None:
    """Give the headless ``model`` a classifier of the size of the ``classifier`` tensors and load them."""
    weight = next((v for k, v in classifier.items() if k.endswith("weight") and v.ndim == 2), None)
    if weight is None:
        return
    model.reset_classifier(weight.shape[0])
    result = model.load_state_dict(classifier, strict=False)
    head = _classifier_prefixes(model)
    if result.unexpected_keys or any(k.startswith(head) for k in result.missing_keys):
        raise UsageError(f"backbone.weights: its classifier ({', '.join(classifier)}) does not fit "
                         f"{type(model).__name__}'s head")


def from_moco_v3(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A MoCo v3 pre-training checkpoint (Chen et al., ICCV 2021) -> the state dict of its timm ViT.

    The checkpoint holds the whole pre-training model: the base encoder (a timm ViT under
    ``module.base_encoder.``, whose ``head`` is the projection MLP), the momentum encoder
    (``module.momentum_encoder.``) and the predictor (``module.predictor.``). Like MoCo v3's own
    linear-probe script, keep the base encoder without its head; only it is the pretrained backbone.
    Any other key is kept as it is, so that the loader reports it as unexpected.

    Returns:
        The ViT's state dict (prefix stripped) and the sorted keys that were dropped.
    """
    kept, dropped = {}, []
    for key, value in state_dict.items():
        if key.startswith(_MOCO_V3_DROPPED):
            dropped.append(key)
        elif key.startswith(MOCO_V3_PREFIX):
            kept[key[len(MOCO_V3_PREFIX) :]] = value
        else:
            kept[key] = value
    return kept, sorted(dropped)


def _load_npz(model: nn.Module, path: Path) -> None:
    """Google's original ``.npz`` checkpoints, through the timm model's own ``load_pretrained``."""
    if not hasattr(model, "load_pretrained"):
        raise UsageError(f"backbone.weights: {path}: .npz weights are supported for ViT models only")
    if not path.is_file():
        raise UsageError(f"backbone.weights: {path} does not exist")
    try:
        model.load_pretrained(str(path))
    except KeyError as exc:
        raise UsageError(f"backbone.weights: {path} lacks the key {exc} of Google's ViT layout") from exc
    except ValueError as exc:  # timm's reader: not an .npz archive, or no known key layout in it
        raise UsageError(f"backbone.weights: {path} is not a Google ViT .npz checkpoint ({exc})") from exc


def _timm_filter(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Apply the architecture's own checkpoint filter (resamples position embeddings, renames old keys)."""
    filter_fn = getattr(importlib.import_module(type(model).__module__), "checkpoint_filter_fn", None)
    return filter_fn(state_dict, model) if filter_fn is not None else state_dict


def _classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    classifier = getattr(model, "pretrained_cfg", {}).get("classifier", "head")
    names = classifier if isinstance(classifier, (list, tuple)) else [classifier]
    return tuple(f"{n}." for n in names)


def first_sentence(exc: BaseException) -> str:
    """``Type: first sentence`` of an exception, for one-line errors (torch's load errors run to pages)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0].split('. ')[0][:200] if text else ''}"


def _short(keys: list[str], limit: int = 6) -> str:
    if not keys:
        return "none"
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
