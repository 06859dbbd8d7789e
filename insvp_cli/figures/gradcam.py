"""Grad-CAM and instance image prompts on the user's own images (InsVP, ACM MM 2024, Figs. 3 and 4).

Fig. 3 shows, per image: the original, the instance image prompt ``p_I``, a heat map of the prompt,
the prompted image ``x + p_I`` and a Grad-CAM of the prompted model. Fig. 4 shows ``p_I`` beside its
two parts, the global prompt ``p_g`` and the patch prompt ``p_l``. Both are computed here as numpy
arrays at the model's input size, then drawn.

The class activation maps come from pytorch-grad-cam (``GradCAM``, ``GradCAMPlusPlus``, ``ScoreCAM``,
``EigenCAM``), each used as a context manager so its hooks are removed even when it fails. The target
layer is the method's :meth:`~insvp_cli.methods.base.Method.cam_layer` (a ViT's last block ``norm1``
unless the method says otherwise). Its tokens are ``[prefix, prompts, patches]``:
:class:`PatchTokens` keeps the patch grid and drops everything before it, however many prompt tokens
the block carries. On a Swin Transformer the target is the final norm, whose ``(B, h, w, C)`` map holds
image tokens only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from ..backbone.swin import is_swin
from ..common.errors import UsageError
from ..data.base import IMAGE_READ_ERRORS
from ..runs.trained import TrainedModel
from . import save_figure
from .common import denormalise

CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "eigencam")
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------------------------------
# Input images


def collect_images(specs: Sequence[str | Path]) -> list[Path]:
    """The image files of ``specs``, found as ``insvp predict`` finds its inputs
    (:meth:`~insvp_cli.use.predict.InputFiles.find`: files, folders recursively, glob patterns), in order and each
    once; in folders and patterns only image files (:data:`IMAGE_SUFFIXES`) count, a file named directly always.

    Raises:
        UsageError: a path that does not exist, or a folder or pattern without images; the message names it.
    """
    from ..use.predict import InputFiles

    found: list[Path] = []
    for spec in map(str, specs):  # one at a time, so that an error names its input
        files = [Path(p) for p in InputFiles.find([spec])]
        images = files if Path(spec).is_file() else [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            raise UsageError(f"{spec} holds no images ({' '.join(IMAGE_SUFFIXES)})")
        found.extend(images)
    return list(dict.fromkeys(found))  # a file named twice is drawn once


def read_image(path: Path) -> Image.Image:
    """An RGB PIL image; a file PIL cannot decode is a usage error naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # convert() decodes the whole file, so truncation shows up here
    except IMAGE_READ_ERRORS as exc:
        raise UsageError(f"image {path} is not a readable image ({type(exc).__name__}: {exc})") from None


def resolve_target(target: str | None, classes: Sequence[str]) -> int | None:
    """``--target``: a class name, or else a label index; ``None`` means the predicted class.

    Names win over indices because digit datasets name their classes ``"5"`` .. ``"9"`` at labels 0..4.
    """
    if target is None:
        return None
    if target in classes:
        return list(classes).index(target)
    if target.lstrip("-").isdigit() and 0 <= int(target) < len(classes):
        return int(target)
    shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
    raise UsageError(f"--target {target!r} is neither a class name nor a label 0..{len(classes) - 1}; "
                     f"classes: {shown}")


# --------------------------------------------------------------------------------------------------
# The CAM target layer and its token reshape


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


def _cam_class(name: str):
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

    cam_cls = _cam_class(method)
    layer, reshape = cam_layer(model, (x.shape[-2], x.shape[-1]))
    # gradients must reach the layer even when nothing in front of it trains (linear probe, VPT's first block)
    x = x.detach().clone().requires_grad_(True)
    targets = None if target is None else [ClassifierOutputTarget(target)]
    with cam_cls(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        maps = cam(input_tensor=x, targets=targets)  # (1, H, W), scaled to [0, 1] by the library
        logits = cam.outputs.detach().float()
    return maps[0].astype(np.float32), logits.softmax(-1)[0].cpu().numpy()


# --------------------------------------------------------------------------------------------------
# Image prompts


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


# --------------------------------------------------------------------------------------------------
# One image through one checkpoint


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


# --------------------------------------------------------------------------------------------------
# Drawing

CAM_TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "eigencam": "Eigen-CAM"}


def _show(ax, image: np.ndarray, title: str, **kwargs):
    shown = ax.imshow(image, interpolation="nearest", **kwargs)  # nearest: small inputs show their real pixels
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def _row_title(row: Explanation) -> str:
    title = f"{row.model_label}: predicted '{row.predicted_name}' ({row.probability:.1%})"
    if row.target != row.predicted:
        title += f"; CAM of '{row.target_name}' ({row.target_probability:.1%})"
    return title


def plot_gradcam(rows: Sequence[Explanation], title: str) -> Figure:
    """Paper Fig. 3 for one image: one row per checkpoint.

    Columns: original, ``p_I``, heat map ``|p_I|``, prompted image ``x + p_I``, CAM over the prompted image.
    A row without image prompts shows the original and the CAM (over the original) in the same columns
    as the others, so CAMs stay side by side; a figure with no image prompts at all has two columns.
    Colour bars get columns of their own, so every image panel has the same size in every row.
    """
    with_prompts = any(r.prompts is not None for r in rows)
    # image columns, with a narrow colour-bar column after the heat map and after the CAM
    ratios = [1, 1, 1, 0.06, 1, 1, 0.06] if with_prompts else [1, 1, 0.06]
    fig = Figure(figsize=(2.2 * sum(ratios) + 1.4, 2.6 * len(rows) + 0.5), layout="constrained")
    fig.suptitle(title, fontsize=11)
    subfigs = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    for subfig, row in zip(subfigs, rows, strict=True):
        subfig.suptitle(_row_title(row), fontsize=10)
        grid = subfig.add_gridspec(1, len(ratios), width_ratios=ratios)
        _show(subfig.add_subplot(grid[0, 0]), row.image, "original")
        if row.prompts is not None:
            p = row.prompts
            scale = float(np.abs(p.prompt).max())
            ax = subfig.add_subplot(grid[0, 1])
            _show(ax, prompt_rgb(p.prompt, scale), "image prompt p_I")
            ax.set_xlabel(f"RGB = 0.5 + p_I / 2m, m = {scale:.2g}", fontsize=8)
            heat = _show(subfig.add_subplot(grid[0, 2]), p.magnitude, "heat map of |p_I|", cmap="inferno")
            subfig.colorbar(heat, cax=subfig.add_subplot(grid[0, 3]), label="L2 norm over RGB")
            _show(subfig.add_subplot(grid[0, 4]), p.prompted, "prompted image x + p_I")
        elif with_prompts:
            ax = subfig.add_subplot(grid[0, 1:4])
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no image prompt", ha="center", va="center", fontsize=9, color="0.4")
        cam_ax = subfig.add_subplot(grid[0, -2])
        _show(cam_ax, row.shown, f"{CAM_TITLES[row.cam_method]} of '{row.target_name}'")
        overlay = cam_ax.imshow(row.cam, cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0, interpolation="bilinear")
        subfig.colorbar(overlay, cax=subfig.add_subplot(grid[0, -1]), label="CAM (max 1)")
    return fig


def plot_prompt_components(row: Explanation, title: str) -> Figure:
    """Paper Fig. 4 for one image: the original, ``p_I``, ``p_g`` and ``p_l`` on one shared colour scale.

    Every prompt is shown as RGB with each channel mapped by :func:`prompt_rgb` with the same
    ``m = max |value|`` over the three prompts; the grey bar shows that per-channel mapping.
    """
    if row.prompts is None:
        raise ValueError("this model has no image prompts")
    parts = row.prompts.components()
    scale = max(float(np.abs(v).max()) for v in parts.values())
    names = {"p_I": "image prompt p_I", "p_g": "global prompt p_g", "p_l": "patch prompt p_l"}
    fig = Figure(figsize=(2.3 * (len(parts) + 1) + 1.0, 3.2), layout="constrained")
    fig.suptitle(f"{title}\nshared scale: each RGB channel v -> 0.5 + v / 2m, m = max |v| = {scale:.3g} "
                 "(normalised-input units)", fontsize=10)
    axes = fig.subplots(1, len(parts) + 1)
    _show(axes[0], row.image, "original")
    for ax, (name, value) in zip(axes[1:], parts.items(), strict=True):
        _show(ax, prompt_rgb(value, scale), names.get(name, name))
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = ScalarMappable(norm=Normalize(-scale, scale), cmap="gray")
    fig.colorbar(bar, ax=list(axes[1:]), shrink=0.8, label="channel value v")
    return fig


# --------------------------------------------------------------------------------------------------
# The command's core


def output_stems(images: Sequence[Path]) -> list[str]:
    """One file-name stem per image; a repeated stem (same name in two folders) gets ``-2``, ``-3``..."""
    seen: dict[str, int] = {}
    stems = []
    for path in images:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        stems.append(path.stem if seen[path.stem] == 1 else f"{path.stem}-{seen[path.stem]}")
    return stems


@dataclass
class GradcamOutputs:
    """Files written for one image."""

    image: Path
    figure: Path
    prompts: list[Path]
    explanations: list[Explanation]


def gradcam_figures(models: Sequence[TrainedModel], images: Sequence[Path], out: Path, target: str | None = None,
                    cam_method: str = "gradcam", prompts: bool = False,
                    on_image: Callable[[GradcamOutputs], None] | None = None) -> list[GradcamOutputs]:
    """``out/<image>-gradcam.png`` for each image (one row per model) and, with ``prompts``, Fig. 4 of each
    model that has image prompts: ``out/<image>-prompts.png`` (first model), ``-prompts-compare.png`` (second).

    Raises:
        UsageError: an unreadable image, a bad ``target``, an unknown CAM method.
    """
    _cam_class(cam_method)  # fail before any work
    targets = [resolve_target(target, m.classes) for m in models]
    results = []
    for path, stem in zip(images, output_stems(images), strict=True):
        image = read_image(path)
        rows = [explain(m, image, t, cam_method) for m, t in zip(models, targets, strict=True)]
        figure = save_figure(plot_gradcam(rows, f"{path.name}: {CAM_TITLES[cam_method]}"), out / f"{stem}-gradcam.png")
        prompt_files = []
        for k, row in enumerate(rows):
            if prompts and row.prompts is not None:
                fig = plot_prompt_components(row, f"{path.name}: image prompts of {row.model_label}")
                prompt_files.append(save_figure(fig, out / f"{stem}-prompts{'-compare' if k else ''}.png"))
        result = GradcamOutputs(path, figure, prompt_files, rows)
        if on_image is not None:
            on_image(result)
        results.append(result)
    return results
