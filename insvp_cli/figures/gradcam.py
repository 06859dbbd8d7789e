"""Grad-CAM and instance image prompts on the user's own images (InsVP, ACM MM 2024, Figs. 3 and 4).

Fig. 3 shows, per image: the original, the instance image prompt ``p_I``, a heat map of the prompt,
the prompted image ``x + p_I`` and a Grad-CAM of the prompted model. Fig. 4 shows ``p_I`` beside its
two parts, the global prompt ``p_g`` and the patch prompt ``p_l``. Both are computed as numpy arrays at
the model's input size (:mod:`.cam`), then drawn here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from ..common.errors import UsageError
from ..data.base import IMAGE_READ_ERRORS
from ..runs.trained import TrainedModel
from . import save_figure
from .cam import Explanation, cam_class, explain, prompt_rgb

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------------------------------
# Input images


def collect_images(specs: Sequence[str | Path]) -> list[Path]:
    """The image files of ``specs``, found as ``insvp predict`` finds its inputs
    (:meth:`~insvp_cli.use.inputs.InputFiles.find`: files, folders recursively, glob patterns), in order and each
    once; in folders and patterns only image files (:data:`IMAGE_SUFFIXES`) count, a file named directly always.

    Raises:
        UsageError: a path that does not exist, or a folder or pattern without images; the message names it.
    """
    from ..use.inputs import InputFiles

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


# --------------------------------------------------------------------------------------------------
# Image prompts


# --------------------------------------------------------------------------------------------------
# One image through one checkpoint


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
    cam_class(cam_method)  # fail before any work
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
