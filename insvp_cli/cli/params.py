"""``insvp params``: parameters of each component of a method, or of every method side by side; no weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..common.errors import UsageError
from ..config.limits import MAX_CLASSES
from ..figures import FIGURE_FORMATS
from .app import INSPECT, app, console
from .options import Format, RecipeOpt, SetOpt, out_file, recipes

if TYPE_CHECKING:
    from rich.table import Table

    from ..common.tables import Value
    from ..methods.params import ParamReport


@app.command(rich_help_panel=INSPECT)
def params(
    recipe: RecipeOpt = None,
    method: Annotated[str | None, typer.Option(help="Method name (overrides method.name).",
                                               show_default=False)] = None,
    backbone: Annotated[str | None, typer.Option(help="timm model name (overrides backbone.name).",
                                                 show_default=False)] = None,
    num_classes: Annotated[int, typer.Option(help="Classes of the head.", min=1, max=MAX_CLASSES)] = 100,
    compare: Annotated[bool, typer.Option("--compare", help="One row per registered method (paper Fig. 5).")] = False,
    overrides: SetOpt = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    plot: Annotated[Path | None, typer.Option(help="Plot test accuracy vs trainable parameters of every finished "
                                                   "run under this folder (paper Fig. 5).", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="With --plot: the figure file, .png, .pdf or .svg "
                                             "(default: PLOT/params-vs-accuracy.png).", show_default=False,
                                             parser=out_file(*FIGURE_FORMATS))] = None,
) -> None:
    """Count the parameters of each component (prompters, prompts, head, frozen backbone). No weights needed.

    With --compare: every registered method on the same backbone and class count, with its extra trainable
    parameters without and with the head and their share of the backbone. method.KEY=value overrides apply
    to the methods that have KEY. With --plot RUNS: the trained runs' parameters against their accuracy.
    """
    from ..resolve.layers import resolve_config

    if plot is not None:
        _plot(plot, out, compare or method is not None)
        return
    if out is not None:
        raise UsageError("--out is the file of --plot; use it with --plot RUNS_DIR")
    if compare and method:
        raise UsageError("--compare builds every registered method; leave out --method")
    sets = list(overrides or [])
    if method:
        sets.insert(0, f"method.name={method}")
    if backbone and not compare:
        sets.insert(0, f"backbone.name={backbone}")
    # one method's config: bad values fail before torch (--compare checks its method keys against every method)
    cfg = None if compare else resolve_config(recipes(recipe), [*sets, "backbone.weights=none"])
    from ..experiments.params import compare_methods
    from ..methods.params import (
        COMPARISON_HEADERS,
        COMPONENT_HEADERS,
        comparison_rows,
        component_rows,
        count_parameters,
        shape_only,
    )

    if compare:
        reports = compare_methods(backbone, num_classes, sets, recipe=recipes(recipe), on_skip=_skipped)
        _emit(fmt, COMPARISON_HEADERS, comparison_rows(reports), [r.to_dict() for r in reports],
              _comparison_title(reports))
        return
    report = count_parameters(shape_only(cfg, num_classes), cfg.method.name, cfg.backbone.name)
    if fmt is Format.table:
        console.print(param_table(report))
        console.print(report.summary_line())
    else:
        _emit(fmt, COMPONENT_HEADERS, component_rows(report), report.to_dict(), "")


def _skipped(reason: str) -> None:
    typer.echo(f"not counted: {reason}", err=True)


def _plot(runs: Path, out: Path | None, conflicting: bool) -> None:
    from ..figures.params_plot import params_plot

    if conflicting:
        raise UsageError("--plot reads trained runs; leave out --compare and --method")
    path, points = params_plot(runs, out)
    methods = sorted({p.method for p in points})
    datasets = sorted({p.dataset for p in points})
    console.print(f"{len(points)} runs ({', '.join(methods)} on {', '.join(datasets)}); written: {path}",
                  highlight=False, soft_wrap=True)


def _comparison_title(reports: Sequence[ParamReport]) -> str:
    first = reports[0]
    return (f"trainable parameters on {first.backbone} ({first.backbone_params:,} backbone parameters), "
            f"{first.num_classes} classes")


def _emit(fmt: Format, headers: Sequence[str], rows: Sequence[Sequence[Value]], data: object, title: str) -> None:
    from ..common.tables import csv_table, markdown_table, rich_table

    if fmt is Format.json:
        typer.echo(json.dumps(data, indent=2))
    elif fmt is Format.markdown:
        typer.echo(markdown_table(headers, rows), nl=False)
    elif fmt is Format.csv:
        typer.echo(csv_table(headers, rows), nl=False)
    else:
        console.print(rich_table(headers, rows, title))


def param_table(report: ParamReport) -> Table:
    from rich.table import Table

    from ..methods.params import backbone_label

    table = Table(title=f"{report.method} on {report.backbone}, {report.num_classes} classes")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    for name, count in report.components.items():
        if name != "backbone":
            table.add_row(name.replace("_", " "), f"{count:,}")
    table.add_row(backbone_label(report), f"{report.components.get('backbone', 0):,}", style="dim")
    table.add_section()
    table.add_row("trainable", f"{report.trainable:,}", style="bold")
    table.add_row("trainable without head", f"{report.trainable_without_head:,}")
    table.add_row("% of backbone (with / without head)",
                  f"{report.percent_of_backbone:.3f} / {report.percent_without_head:.3f}")
    return table
