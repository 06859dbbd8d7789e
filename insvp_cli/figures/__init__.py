"""Figures of InsVP (ACM MM 2024): Grad-CAM and image prompts (Figs. 3, 4), t-SNE of features and of the
specific prompt (Figs. 6, 8), and extra parameters against accuracy (Fig. 5).

Every module computes plain numpy arrays first and draws them second, so the numbers are testable
without looking at pictures. Drawing uses :class:`matplotlib.figure.Figure` directly and never imports
``pyplot``: such figures render with the Agg canvas and never open a window, so the commands work the
same on a headless server, in CI and on a laptop.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100  # small PNGs that still show every pixel of a 32 px input when drawn at 2 in
# what a figure file may be: a PNG, or the vector formats a paper takes
FIGURE_FORMATS = (".png", ".pdf", ".svg")


def save_figure(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    """Write ``fig`` to ``path`` atomically, in the format of its suffix (one of :data:`FIGURE_FORMATS`; its folder
    created if needed); torch-free, so drawing metrics needs no model."""
    from ..common.atomic import atomic_open

    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lower().removeprefix(".") or "png", dpi=dpi)
    return path
