"""``insvp params``: parameters of each component of a method, without any weights."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..config import resolve_config
from ..methods import build_model
from ..params import ParamReport, count_parameters
from .app import app, console
from .options import RecipeOpt, SetOpt


class Format(str, Enum):
    table = "table"
    json = "json"


@app.command()
def params(
    recipe: RecipeOpt = None,
    method: Annotated[Optional[str], typer.Option(help="Method name (overrides method.name).")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="timm model name (overrides backbone.name).")] = None,
    num_classes: Annotated[int, typer.Option(help="Classes of the head.")] = 100,
    overrides: SetOpt = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Count the parameters of each component (prompters, prompts, head, frozen backbone). No weights needed."""
    sets = list(overrides or [])
    if method:
        sets.insert(0, f"method.name={method}")
    if backbone:
        sets.insert(0, f"backbone.name={backbone}")
    cfg = resolve_config(recipe, [*sets, "backbone.weights=none"])
    report = count_parameters(build_model(cfg, num_classes), cfg.method.name, cfg.backbone.name)
    if fmt is Format.json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        console.print(param_table(report))
        console.print(report.summary_line())


def param_table(report: ParamReport) -> Table:
    table = Table(title=f"{report.method} on {report.backbone}, {report.num_classes} classes")
    table.add_column("component")
    table.add_column("parameters", justify="right")
    for name, count in report.components.items():
        if name != "backbone":
            table.add_row(name.replace("_", " "), f"{count:,}")
    table.add_row("frozen backbone", f"{report.components.get('backbone', 0):,}", style="dim")
    table.add_section()
    table.add_row("trainable", f"{report.trainable:,}", style="bold")
    table.add_row("trainable without head", f"{report.trainable_without_head:,}")
    table.add_row("% of backbone (with / without head)",
                  f"{report.percent_of_backbone:.3f} / {report.percent_without_head:.3f}")
    return table
