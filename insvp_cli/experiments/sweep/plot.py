"""``sweep.png`` of ``insvp sweep``: best validation accuracy of every trial against each swept value.

One panel per swept key. Complete trials are filled dots joined by the best accuracy at each value (the
envelope over the other keys), pruned trials hollow grey dots at their accuracy when pruned, failed trials
red crosses at their last accuracy (or at the bottom when they never reached an evaluation); the selected
trial is a star.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from ...figures import save_figure

if TYPE_CHECKING:
    from .rows import SweepResult, TrialRow
    from .space import Dimension


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _log_axis(dim: Dimension, xs: list) -> bool:
    """Log scale for log ranges and for positive numeric grids that span at least a factor of 10."""
    if dim.log:
        return True
    positive = [x for x in xs if x > 0]
    return len(positive) == len(xs) and max(positive) >= 10 * min(positive)


def plot_sweep(result: SweepResult) -> Figure:
    """The figure of ``result`` (see the module docstring)."""
    sweep = result.sweep
    dims = list(sweep.space)
    fig = Figure(figsize=(max(5.6, 4.4 * len(dims) + 0.4), 4.0), layout="constrained")
    counts = result.counts()
    fig.suptitle(f"insvp sweep: {sweep.base.method.name} on {sweep.base.data.name}\n{counts['complete']} complete, "
                 f"{counts['pruned']} pruned, {counts['failed']} failed", fontsize=10)
    axes = fig.subplots(1, len(dims), squeeze=False)[0]
    shown = [r for r in result.rows if r.state != "waiting" and all(d.key in r.params for d in dims)]
    accuracies = [r.val_acc for r in shown if r.val_acc is not None]
    floor = min(accuracies, default=0.0)
    for ax, dim in zip(axes, dims, strict=True):
        values = list(dim.values) if dim.is_grid else sorted({r.params[dim.key] for r in shown})
        numeric = _numeric(values)
        position = (lambda v: v) if numeric else (lambda v, order=list(values): order.index(v))
        _draw(ax, dim, shown, result.best, position, floor)
        if numeric and values and _log_axis(dim, [v for v in values if v != 0] or [1]):
            ax.set_xscale("symlog" if 0 in values else "log", **({"linthresh": _linthresh(values)} if 0 in values
                                                                   else {}))
        if not numeric:
            ax.set_xticks(range(len(values)), [str(v) for v in values])
        elif dim.is_grid:
            ax.set_xticks(values, [f"{v:g}" for v in values])
            ax.minorticks_off()
        ax.set_xlabel(dim.key, fontsize=9)
        ax.set_ylabel("best validation accuracy (%)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
    return fig


def _linthresh(values: list) -> float:
    """The linear band of a symmetric-log axis: below the smallest non-zero value, so 0 sits apart from it."""
    return min(abs(v) for v in values if v != 0) / 2 if any(v != 0 for v in values) else 1.0


def _draw(ax, dim: Dimension, rows: list[TrialRow], best: TrialRow | None, position, floor: float) -> None:
    complete = [r for r in rows if r.state == "complete"]
    envelope: dict = {}
    for r in complete:
        x = r.params[dim.key]
        envelope[x] = max(envelope.get(x, r.val_acc), r.val_acc)
    if envelope:
        xs = sorted(envelope, key=position)
        ax.plot([position(x) for x in xs], [envelope[x] for x in xs], color="tab:blue", alpha=0.4, zorder=1)
    ax.scatter([position(r.params[dim.key]) for r in complete], [r.val_acc for r in complete], color="tab:blue",
               s=30, zorder=2, label="complete")
    pruned = [r for r in rows if r.state == "pruned" and r.val_acc is not None]
    if pruned:
        ax.scatter([position(r.params[dim.key]) for r in pruned], [r.val_acc for r in pruned], facecolors="none",
                   edgecolors="grey", s=30, zorder=2, label="pruned")
    failed = [r for r in rows if r.state == "failed"]
    if failed:
        ax.scatter([position(r.params[dim.key]) for r in failed],
                   [r.val_acc if r.val_acc is not None else floor for r in failed], marker="x", color="tab:red",
                   s=36, zorder=3, label="failed")
    running = [r for r in rows if r.state == "running" and r.val_acc is not None]
    if running:
        ax.scatter([position(r.params[dim.key]) for r in running], [r.val_acc for r in running], marker="^",
                   color="tab:orange", s=30, zorder=2, label="running")
    if best is not None and dim.key in best.params:
        ax.scatter([position(best.params[dim.key])], [best.val_acc], marker="*", color="gold", edgecolors="black",
                   linewidths=0.6, s=160, zorder=4, label=f"selected (trial {best.trial})")
    ax.margins(x=0.08, y=0.1)
    ax.legend(fontsize=7, loc="best")


def sweep_plot(result: SweepResult, path: Path) -> Path:
    """Draw ``result`` into ``path`` (PNG)."""
    return save_figure(plot_sweep(result), path)
