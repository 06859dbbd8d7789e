"""Training curves of one or many runs: loss, validation and test accuracy, and learning rate per epoch.

Every run folder of ``insvp train`` (InsVP, ACM MM 2024, and every comparison method) logs one row per finished
epoch to ``metrics.jsonl``; this draws them side by side, one colour per run: the training loss, the validation
accuracy (solid) with the test accuracy where the run logged it (``train.test_every_epoch``, dashed), and the
learning rate at the end of each epoch (log scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..common.errors import UsageError
from ..runs.folder import is_run
from ..runs.metrics import read_metrics


def run_label(run: Path, runs: Sequence[Path]) -> str:
    """The run's folder name, with its parent's where another run has the same name."""
    same = sum(r.name == run.name for r in runs)
    return f"{run.parent.name}/{run.name}" if same > 1 else run.name


def plot_curves(runs: Sequence[Path], out: Path) -> Path:
    """Draw the curves of ``runs`` (run folders) into the PNG ``out``.

    Raises:
        UsageError: a path that is not a run folder, or a run that has not finished an epoch yet.
    """
    curves = {}
    for run in runs:
        if not is_run(run):
            raise UsageError(f"{run} is not a run folder (no config.yaml); give folders written by insvp train")
        rows = read_metrics(run)
        if not rows:
            raise UsageError(f"{run} has no finished epoch yet (metrics.jsonl is empty or absent)")
        curves[run_label(run, runs)] = rows
    # matplotlib only once the folders are known to be runs: a wrong path fails at once
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from . import save_figure

    fig = Figure(figsize=(15, 4.2), layout="constrained")
    loss, acc, lr = fig.subplots(1, 3)
    for i, (label, rows) in enumerate(curves.items()):
        color = f"C{i % 10}"
        epochs = [r["epoch"] for r in rows]
        loss.plot(epochs, [r["train_loss"] for r in rows], color=color, label=label)
        val = [(r["epoch"], r["val_acc"]) for r in rows if "val_acc" in r]
        if val:
            acc.plot(*zip(*val, strict=True), color=color, marker=".", label=f"{label} val")
        test = [(r["epoch"], r["test_acc"]) for r in rows if "test_acc" in r]
        if test:
            acc.plot(*zip(*test, strict=True), color=color, linestyle="--", label=f"{label} test")
        lr.plot(epochs, [r["lr"] for r in rows], color=color, label=label)
    for ax, title, ylabel in ((loss, "training loss", "loss"), (acc, "accuracy", "%"), (lr, "learning rate", "lr")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if any(r["lr"] > 0 for rows in curves.values() for r in rows):
        lr.set_yscale("log")
    acc.legend(fontsize="small")
    loss.legend(fontsize="small")
    return save_figure(fig, out)
