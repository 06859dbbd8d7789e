"""Trainable parameters against test accuracy for every finished run (InsVP, ACM MM 2024, Fig. 5).

Fig. 5 places each visual-prompting method by its extra parameters and its accuracy. Here every
finished run under a folder (its ``summary.json``) is one point: one panel per dataset, one marker and
colour per method (the same in every panel), each point labelled with its method and its extra
parameters.

The x axis is the trainable parameters *with* the head, on a log scale: the linear probe trains the head
only (0 extra parameters), which a log axis without the head could not show, and within one dataset
every method has the same head, so the head shifts all points of a panel alike. The extra count
(without the head) is printed beside each point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from ..common.errors import UsageError
from ..common.notes import warn
from ..common.paths import check_output_file
from ..runs.folder import finished_runs
from . import FIGURE_FORMATS, save_figure

REQUIRED = ("trainable_params_without_head", "trainable_params", "test_acc", "method", "dataset")
MARKERS = "osD^vP*XhP<>"


@dataclass(frozen=True)
class RunPoint:
    """One finished run: where it is, what it trained and how well it did."""

    run: Path
    method: str
    dataset: str
    extra_params: int
    trainable_params: int
    test_acc: float


def collect_runs(runs_dir: Path) -> list[RunPoint]:
    """Every finished run under ``runs_dir`` (recursively), sorted by dataset, method and folder.

    A ``summary.json`` that cannot be read or lacks one of :data:`REQUIRED` is not a finished run of
    this tool and is left out.
    """
    if not runs_dir.is_dir():
        raise UsageError(f"--plot {runs_dir} is not a folder of runs")
    points = []
    for run in finished_runs(runs_dir):
        try:
            summary = run.read_summary()
        except UsageError as exc:
            warn(f"skipped: {exc}")
            continue
        if any(key not in summary for key in REQUIRED):
            continue
        points.append(RunPoint(run.path, str(summary["method"]), str(summary["dataset"]),
                               int(summary["trainable_params_without_head"]), int(summary["trainable_params"]),
                               float(summary["test_acc"])))
    return sorted(points, key=lambda p: (p.dataset, p.method, str(p.run)))


def short_count(n: int) -> str:
    """``136843 -> 137k``, ``85798656 -> 85.8M``."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)


def plot_params_accuracy(points: list[RunPoint], title: str) -> Figure:
    """One panel per dataset: trainable parameters (log) against test accuracy, a labelled marker per run."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    datasets = sorted({p.dataset for p in points})
    methods = sorted({p.method for p in points})
    style = {m: (MARKERS[k % len(MARKERS)], colormaps["tab10"](k % 10)) for k, m in enumerate(methods)}
    columns = min(3, len(datasets))
    rows = -(-len(datasets) // columns)
    fig = Figure(figsize=(4.4 * columns + 1.6, 3.8 * rows + 0.6), layout="constrained")
    fig.suptitle(title, fontsize=11)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, dataset in zip(axes, datasets, strict=False):
        here = [p for p in points if p.dataset == dataset]
        for p in here:
            marker, colour = style[p.method]
            ax.scatter(p.trainable_params, p.test_acc, marker=marker, color=colour, s=50, zorder=3)
            ax.annotate(f"{p.method} (+{short_count(p.extra_params)})", (p.trainable_params, p.test_acc),
                        xytext=(5, 4), textcoords="offset points", fontsize=7)
        ax.set_xscale("log")
        low = min(p.trainable_params for p in here)
        high = max(p.trainable_params for p in here)
        ax.set_xlim(low / 2, high * 6)  # room on the right for the labels of the largest runs
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("trainable parameters, head included (log)", fontsize=9)
        ax.set_ylabel("test accuracy (%)", fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[len(datasets):]:
        ax.set_axis_off()
    handles = [Line2D([], [], marker=style[m][0], color=style[m][1], linestyle="", label=m) for m in methods]
    fig.legend(handles=handles, loc="outside right center", title="method", fontsize=8, title_fontsize=9)
    return fig


def params_plot(runs_dir: Path, out: Path | None = None) -> tuple[Path, list[RunPoint]]:
    """Draw every finished run under ``runs_dir`` into ``out`` (default ``runs_dir/params-vs-accuracy.png``).

    Raises:
        UsageError: no finished run, or an output file that cannot be written as a figure (:data:`FIGURE_FORMATS`).
    """
    out = check_output_file(out if out is not None else runs_dir / "params-vs-accuracy.png", FIGURE_FORMATS)
    points = collect_runs(runs_dir)
    if not points:
        raise UsageError(f"no finished run under {runs_dir} (a folder with summary.json); "
                         "train one with: insvp train --recipe RECIPE, or insvp compare --recipe RECIPE")
    title = (f"test accuracy vs trainable parameters: {len(points)} runs under {runs_dir}\n"
             "label: method (+ extra parameters without the head)")
    return save_figure(plot_params_accuracy(points, title), out), points
