"""Backbone weight files: local files in every format the recipes use (safetensors, torch, timm's npz, MoCo v3)."""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from ..common.errors import UsageError, first_sentence

LOCAL_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".pth.tar", ".npz")
_STATE_DICT_WRAPPERS = ("state_dict", "model", "module")
MOCO_V3_PREFIX = "module.base_encoder."
# the parts of MoCo v3's pre-training model that are not the backbone: projector, momentum encoder, predictor
_MOCO_V3_DROPPED = (f"{MOCO_V3_PREFIX}head.", "module.momentum_encoder.", "module.predictor.")


def resolve_weights_path(weights: str) -> Path:
    """A local weights path; ``asset:NAME`` names a file shipped in ``insvp_cli/assets/``."""
    if weights.startswith("asset:"):
        return Path(__file__).resolve().parents[1] / "assets" / weights.removeprefix("asset:")
    return Path(weights).expanduser()


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
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # tensors of other shapes: weights of another size of the architecture
        raise UsageError(f"backbone.weights: {path} does not fit {type(model).__name__} as backbone.name and "
                         f"backbone.kwargs build it ({_first_mismatch(exc)})") from None
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


def _first_mismatch(exc: RuntimeError) -> str:
    """The first ``size mismatch for KEY: ...`` line of ``load_state_dict``'s many-line error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("size mismatch")), lines[-1] if lines else str(exc))


def _short(keys: list[str], limit: int = 6) -> str:
    if not keys:
        return "none"
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
