"""The frozen pretrained backbone: any timm ViT-family model, with weights from timm, a local file or none.

Wraps timm through its public surface (``create_model``, ``checkpoint_filter_fn``,
``resolve_model_data_config``); nothing of timm's model code is copied.
"""

from __future__ import annotations

import difflib
import os
import socket
from typing import Any
from urllib.parse import urlparse

import timm
import torch
from torch import nn

from ..common.errors import UsageError, first_sentence
from ..config.schema import BackboneConfig
from ..runtime.memory import check_parameters
from .patch_embed import use_patch_conv
from .weights import _attach_classifier, load_local_weights, resolve_weights_path


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
        if cfg.kwargs:  # a size the user chose: weighed on the meta device (no memory) before it is built
            with torch.device("meta"):
                check_parameters(timm.create_model(arch, pretrained=False, **headless),
                                 f"backbone {cfg.name} with backbone.kwargs {cfg.kwargs}")
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
    except (ValueError, AssertionError, RuntimeError) as exc:  # values the architecture cannot be built with
        raise UsageError(f"backbone.kwargs: {cfg.name} cannot be built with {cfg.kwargs} "
                         f"({first_sentence(exc)})") from None
    _check_input_size(model, cfg)
    if weights not in ("timm", "none"):
        classifier = load_local_weights(model, resolve_weights_path(weights))
        if keep_classifier and classifier:
            _attach_classifier(model, classifier)
    freeze(model)
    use_patch_conv(model)
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


def freeze(model: nn.Module) -> None:
    """Stop gradients into ``model``'s weights and put it in eval mode (no dropout / drop-path)."""
    model.requires_grad_(False)
    model.eval()


def token_shape(model: nn.Module) -> tuple[int, int]:
    """``(tokens, width)`` of the first block's input per image (patches plus class and register tokens); ``(0, 0)``
    for a model without a patch embedding."""
    patches = getattr(getattr(model, "patch_embed", None), "num_patches", None)
    if patches is None:
        return 0, 0
    return patches + getattr(model, "num_prefix_tokens", 0), getattr(model, "embed_dim", model.num_features)


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
