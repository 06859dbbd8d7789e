"""Training curves of one or many runs: loss, validation and test accuracy, and learning rate per epoch.

Every run folder of ``insvp train`` (InsVP, ACM MM 2024, and every comparison method) logs one row per finished
epoch to ``metrics.jsonl``; this draws them side by side, one colour per run: the training loss, the validation
accuracy (solid) with the test accuracy where the run logged it (``train.test_every_epoch``, dashed), and the
learning rate at the end of each epoch (log scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..common.errors import UsageError
from ..common.paths import check_output_file
from ..runs.folder import RunFolder
from . import FIGURE_FORMATS


def run_label(run: Path, runs: Sequence[Path]) -> str:
    """The run's folder name, with its parent's where another run has the same name."""
    same = sum(r.name == run.name for r in runs)
    return f"{run.parent.name}/{run.name}" if same > 1 else run.name


def _points(rows: Sequence[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    """``(epoch, value)`` of the rows that hold a finite number under ``key`` (a damaged row has a gap)."""
    return [(r["epoch"], float(r[key])) for r in rows
            if isinstance(r.get(key), int | float) and not isinstance(r[key], bool) and math.isfinite(r[key])]


def plot_curves(runs: Sequence[Path], out: Path, warn: Callable[[str], None] | None = None) -> Path:
    """Draw the curves of ``runs`` (run folders) into the figure file ``out`` (PNG, PDF or SVG).

    A row of ``metrics.jsonl`` that cannot be read is skipped (``warn`` is told which), and a value that is
    missing or not finite leaves a gap in its curve: what is there is drawn.

    Raises:
        UsageError: a path that is not a run folder, a run that has not finished an epoch yet, or an ``out`` that
            cannot be written as a figure (:data:`~insvp_cli.figures.FIGURE_FORMATS`).
    """
    check_output_file(out, FIGURE_FORMATS)
    curves = {}
    for run in runs:
        folder = RunFolder(run)
        if not folder.is_run():
            raise UsageError(f"{run} is not a run folder (no {folder.CONFIG}); give folders written by insvp train")
        rows = folder.read_metrics(warn)
        if not rows:
            raise UsageError(f"{run} has no finished epoch yet (no readable row in {folder.METRICS})")
        curves[run_label(run, runs)] = rows
    # matplotlib only once the folders are known to be runs: a wrong path fails at once
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from . import save_figure

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    loss, acc, lr = fig.subplots(1, 3)
    positive_lr = False
    for i, (label, rows) in enumerate(curves.items()):
        color = f"C{i % 10}"
        for ax, key, style in ((loss, "train_loss", {"label": label}), (lr, "lr", {"label": label}),
                               (acc, "val_acc", {"marker": ".", "label": f"{label} val"}),
                               (acc, "test_acc", {"linestyle": "--", "label": f"{label} test"})):
            points = _points(rows, key)
            if points:
                ax.plot(*zip(*points, strict=True), color=color, **style)
                positive_lr |= key == "lr" and any(v > 0 for _, v in points)
    for ax, title, ylabel in ((loss, "training loss", "loss"), (acc, "accuracy", "%"), (lr, "learning rate", "lr")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if positive_lr:
        lr.set_yscale("log")
    acc.legend(fontsize="small")
    loss.legend(fontsize="small")
    return save_figure(fig, out)
