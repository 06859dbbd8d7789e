"""``insvp report``: finished runs in the layout of the paper's tables, beside the published numbers."""

from __future__ import annotations

from typing import Annotated

import typer

from .app import PAPER, app, console
from .options import TABLE_METAVAR, ReportFormat, RunsOpt, table_name
from .reproduce import DEFAULT_RUNS


@app.command(rich_help_panel=PAPER)
def report(
    runs: RunsOpt = DEFAULT_RUNS,
    table: Annotated[str | None, typer.Option(help="One table (default: every table with a finished run).",
                                              metavar=TABLE_METAVAR, parser=table_name, show_default=False)] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="Output format (table: the terminal).")] = (
        ReportFormat.table),
) -> None:
    """Our numbers beside the paper's, in the paper's table layout; missing runs are marked with an em dash."""
    from ..experiments.reproduce.report import DIGITS, build_report, render, tables_with_results

    names = [table] if table is not None else tables_with_results(runs)
    reports = [build_report(name, runs) for name in names]
    for i, rep in enumerate(reports):
        if fmt is ReportFormat.table:
            console.print(_rich(rep, DIGITS))
            continue
        if i:
            typer.echo("")
        if fmt is ReportFormat.csv and len(reports) > 1:
            typer.echo(f"# {rep.title}")
        # plain stdout, not the rich console: no wrapping, so the text can be redirected into a file as it is
        typer.echo(render(rep, fmt.value), nl=False)


def _rich(rep, digits: int):
    from rich.table import Table

    from ..common.tables import human, numeric_columns

    title = f"{rep.title} ({rep.finished}/{rep.runs} runs finished)"
    out = Table(title=title, caption="\n".join(rep.notes), caption_justify="left")
    for header, numeric in zip(rep.headers, numeric_columns(rep.headers, rep.rows), strict=True):
        out.add_column(header, justify="right" if numeric else "left")
    previous = None
    for row in rep.rows:
        if previous is not None and row[0] != previous:
            out.add_section()  # one block per method: its paper, ours and difference rows
        previous = row[0]
        out.add_row(*(human(cell, digits) for cell in row), style="dim" if row[1].startswith("paper") else None)
    return out
