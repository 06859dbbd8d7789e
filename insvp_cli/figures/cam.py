"""Class activation maps and instance image prompts of a trained model, as numpy arrays (InsVP, ACM MM 2024,
Figs. 3 and 4): the computation behind ``insvp gradcam`` (drawn by :mod:`.gradcam`) and ``insvp serve``'s
explanations.

The class activation maps come from pytorch-grad-cam (``GradCAM``, ``GradCAMPlusPlus``, ``ScoreCAM``,
``EigenCAM``), each used as a context manager so its hooks are removed even when it fails. The target
layer is the method's :meth:`~insvp_cli.methods.base.Method.cam_layer` (a ViT's last block ``norm1``
unless the method says otherwise). Its tokens are ``[prefix, prompts, patches]``:
:class:`PatchTokens` keeps the patch grid and drops everything before it, however many prompt tokens
the block carries. On a Swin Transformer the target is the final norm, whose ``(B, h, w, C)`` map holds
image tokens only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..backbone.swin import is_swin
from ..common.errors import UsageError
from ..runs.trained import TrainedModel

CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "eigencam")


class PatchTokens:
    """``reshape_transform`` for a ViT layer: tokens ``(B, T, D)`` -> the patch-token map ``(B, D, h, w)``.

    Prompt tokens are inserted after the prefix (class and register) tokens
    (:func:`insvp_cli.methods.base.blocks_with_prompts`), so the patches are always the last ``h * w``
    tokens. Everything before them is dropped: the prefix and however many prompt tokens the block
    carries (``L_p`` of InsVP, ``num_tokens`` of VPT, none for the other methods), counted from the
    sequence length on every call rather than assumed.

    Args:
        grid: the patch grid ``(h, w)`` of the input, ``(H / p, W / p)``.
        prefix: the backbone's class and register tokens (``num_prefix_tokens``).

    Attributes:
        prompt_tokens: prompt tokens dropped on the last call.
    """

    def __init__(self, grid: tuple[int, int], prefix: int):
        self.grid = grid
        self.prefix = prefix
        self.prompt_tokens = 0

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        h, w = self.grid
        before = length - h * w
        if before < self.prefix:
            raise ValueError(f"{length} tokens cannot hold {self.prefix} prefix tokens and a {h}x{w} patch grid")
        self.prompt_tokens = before - self.prefix
        # (B, prefix + P + h w, D) -> (B, h w, D) -> (B, h, w, D) -> (B, D, h, w)
        return tokens[:, before:].reshape(batch, h, w, dim).permute(0, 3, 1, 2)


def channels_first(feature_map: torch.Tensor) -> torch.Tensor:
    """Swin's ``(B, h, w, C)`` map -> ``(B, C, h, w)``."""
    return feature_map.permute(0, 3, 1, 2)


def cam_layer(model: nn.Module, image_size: tuple[int, int]) -> tuple[nn.Module, Callable]:
    """The method's CAM layer (:meth:`~insvp_cli.methods.base.Method.cam_layer`) and the reshape of its output.

    Raises:
        UsageError: a backbone that is neither a timm ViT nor a timm Swin Transformer.
    """
    layer, backbone = model.cam_layer(), model.backbone
    if is_swin(backbone):
        return layer, channels_first
    grid = tuple(backbone.patch_embed.dynamic_feat_size(image_size))
    return layer, PatchTokens(grid, backbone.num_prefix_tokens)


def cam_class(name: str):
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, ScoreCAM

    classes = dict(zip(CAM_METHODS, (GradCAM, GradCAMPlusPlus, ScoreCAM, EigenCAM), strict=True))
    if name not in classes:
        raise UsageError(f"--cam {name!r} is not valid; valid: {', '.join(CAM_METHODS)}")
    return classes[name]


def compute_cam(model: nn.Module, x: torch.Tensor, target: int | None = None,
                method: str = "gradcam") -> tuple[np.ndarray, np.ndarray]:
    """A class activation map of one image and the model's class probabilities.

    Args:
        model: a method in eval mode.
        x: one normalised image ``(1, 3, H, W)`` (the model adds its own prompts).
        target: the class to explain; ``None``: the predicted class.
        method: one of :data:`CAM_METHODS`.

    Returns:
        ``cam`` ``(H, W)`` in [0, 1] and ``probabilities`` ``(num_classes,)``.
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cam_cls = cam_class(method)
    layer, reshape = cam_layer(model, (x.shape[-2], x.shape[-1]))
    # gradients must reach the layer even when nothing in front of it trains (linear probe, VPT's first block)
    x = x.detach().clone().requires_grad_(True)
    targets = None if target is None else [ClassifierOutputTarget(target)]
    with cam_cls(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        maps = cam(input_tensor=x, targets=targets)  # (1, H, W), scaled to [0, 1] by the library
        logits = cam.outputs.detach().float()
    return maps[0].astype(np.float32), logits.softmax(-1)[0].cpu().numpy()


@dataclass
class ImagePromptArrays:
    """A method's image-level prompts of one image, ``(H, W, 3)`` each, in normalised-input units.

    Attributes:
        prompt: what is added to the (normalised) image; InsVP's ``p_I = w_g p_g + w_l p_l``.
        parts: the named components of ``prompt`` (InsVP: ``p_g`` and ``p_l`` when their prompters are on).
        prompted: ``x + p_I`` de-normalised for display, in [0, 1].
        magnitude: ``|p_I|`` ``(H, W)``, the L2 norm over the colour channels (the heat map of Fig. 3).
    """

    prompt: np.ndarray
    parts: dict[str, np.ndarray]
    prompted: np.ndarray
    magnitude: np.ndarray

    def components(self) -> dict[str, np.ndarray]:
        """``p_I`` and its parts, by their symbol."""
        return {"p_I": self.prompt, **self.parts}


def _hwc(t: torch.Tensor) -> np.ndarray:
    # (3, H, W) -> (H, W, 3)
    return t.detach().float().cpu().permute(1, 2, 0).numpy()


@torch.no_grad()
def image_prompt_arrays(trained: TrainedModel, x: torch.Tensor) -> ImagePromptArrays | None:
    """The image prompts of one normalised image ``(1, 3, H, W)``; ``None`` for a method without any."""
    out = trained.model.image_prompts(x)
    if out is None or out.prompt is None:  # no image prompts (InsVP with both image prompters off, too)
        return None
    prompt = _hwc(out.prompt[0])
    return ImagePromptArrays(
        prompt=prompt,
        parts={name: _hwc(part[0]) for name, part in out.parts.items()},
        prompted=denormalise(out.prompted[0], trained.mean, trained.std),
        magnitude=np.linalg.norm(prompt, axis=-1),
    )


def prompt_rgb(prompt: np.ndarray, scale: float) -> np.ndarray:
    """A prompt ``(H, W, 3)`` as an RGB image: each channel ``0.5 + v / (2 * scale)``, clipped to [0, 1].

    Zero is mid-grey, so a prompt that adds nothing looks flat; the same ``scale`` for several prompts
    keeps them comparable.
    """
    return np.clip(0.5 + prompt / (2.0 * max(scale, 1e-12)), 0.0, 1.0)


@dataclass
class Explanation:
    """What one checkpoint makes of one image: the arrays of one row of Fig. 3.

    Attributes:
        model_label: method and checkpoint, for titles.
        image: the input as the model sees it (resized, cropped), de-normalised, ``(H, W, 3)`` in [0, 1].
        prompts: the image prompts, or ``None`` for a method without image prompts.
        cam: the class activation map ``(H, W)`` in [0, 1].
        cam_method: which CAM made ``cam``.
        predicted, predicted_name, probability: the top class and its softmax probability.
        target, target_name, target_probability: the class ``cam`` explains (the prediction unless chosen).
    """

    model_label: str
    image: np.ndarray
    prompts: ImagePromptArrays | None
    cam: np.ndarray
    cam_method: str
    predicted: int
    predicted_name: str
    probability: float
    target: int
    target_name: str
    target_probability: float

    @property
    def shown(self) -> np.ndarray:
        """The image the CAM is drawn on: the prompted image if there is one (Fig. 3), else the input."""
        return self.prompts.prompted if self.prompts is not None else self.image


def explain(trained: TrainedModel, image: Image.Image, target: int | None = None,
            cam_method: str = "gradcam") -> Explanation:
    """Run one image through a checkpoint's model: prediction, image prompts and CAM."""
    x = trained.transform(image).unsqueeze(0).to(trained.device)  # (1, 3, H, W)
    prompts = image_prompt_arrays(trained, x)
    cam, probs = compute_cam(trained.model, x, target, cam_method)
    predicted = int(probs.argmax())
    chosen = predicted if target is None else target
    return Explanation(
        model_label=trained.label, image=denormalise(x[0], trained.mean, trained.std), prompts=prompts, cam=cam,
        cam_method=cam_method, predicted=predicted, predicted_name=trained.classes[predicted],
        probability=float(probs[predicted]), target=chosen, target_name=trained.classes[chosen],
        target_probability=float(probs[chosen]),
    )


def denormalise(x: torch.Tensor, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """A normalised image ``(3, H, W)`` -> displayable RGB ``(H, W, 3)`` in [0, 1] (clipped)."""
    # (3, H, W) -> (H, W, 3)
    image = x.detach().float().cpu().permute(1, 2, 0).numpy()
    return np.clip(image * std + mean, 0.0, 1.0)
