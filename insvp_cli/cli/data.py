"""``insvp data``: list the registered datasets and check one before a long run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import TOOLS, App, app, console
from .options import RecipeOpt, SetOpt, recipes

if TYPE_CHECKING:
    from ..data.check import CheckReport

data_app = App(help="Datasets: list them, check one before training.", no_args_is_help=True)
app.add_typer(data_app, name="data", rich_help_panel=TOOLS)

SHOW_PATHS = 5  # first few missing / unreadable paths printed per split


@data_app.command("list")
def list_datasets() -> None:
    """List the registered datasets and the on-disk layout each expects under data.root."""
    from rich.markup import escape
    from rich.table import Table

    from ..data.registry import DATASETS

    table = Table(title="datasets")
    table.add_column("name")
    table.add_column("what")
    table.add_column("expected layout", overflow="fold")
    for name in DATASETS.names():
        spec = DATASETS.get(name)
        table.add_row(name, spec.summary, escape(spec.layout))
    console.print(table)


@data_app.command("check")
def check(
    name: Annotated[str, typer.Argument(help="A dataset name (`insvp data list` lists them).", metavar="DATASET",
                                        show_default=False)],
    root: Annotated[Path | None, typer.Option(help="Dataset folder (data.root).", show_default=False)] = None,
    split_dir: Annotated[
        Path | None, typer.Option(help="Folder of the FGVC split JSON files (data.split_dir).", show_default=False)
    ] = None,
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Decode every image completely (slow; finds truncated "
                                                      "files).")] = False,
) -> None:
    """Check a dataset: split sizes, classes, per-class counts, missing and unreadable files.

    Exit code 0: ready. 1: missing or unreadable files, or an empty split. 2: usage error (unknown name, bad root).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..data.check import check_dataset, count_files
    from ..data.splits import load_splits
    from ..resolve.layers import resolve_config

    cfg = resolve_config(recipes(recipe), list(overrides or []), bind=False).data
    changes = {"name": name}
    if root is not None:
        changes["root"] = str(root)
    if split_dir is not None:
        changes["split_dir"] = str(split_dir)
    cfg = dataclasses.replace(cfg, **changes)
    splits = load_splits(cfg)
    datasets = [splits.train, splits.val, splits.test]
    with Progress(TextColumn("checking files"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("files", total=count_files(datasets))
        report = check_dataset(datasets, splits.classes, cfg, full=full,
                               advance=lambda n: progress.advance(task, n))
    print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def print_report(report: CheckReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{report.dataset}: {len(report.classes)} classes")
    for column in ("split", "images", "classes", "min/class", "max/class", "missing", "unreadable"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split in report.splits:
        files = ("-", "-") if split.in_memory else (str(len(split.missing)), str(len(split.unreadable)))
        table.add_row(split.name, str(split.size), f"{split.classes_present}/{len(report.classes)}",
                      str(split.counts.min() if split.counts.size else 0),
                      str(split.counts.max() if split.counts.size else 0), *files,
                      style="red" if split.missing or split.unreadable else None)
    console.print(table)
    for split in report.splits:
        if split.missing:
            console.print(f"[red]{split.name}: {len(split.missing)} files missing[/], first {SHOW_PATHS}:")
            for path in split.missing[:SHOW_PATHS]:
                console.print(f"  {escape(path)}", soft_wrap=True, highlight=False)
        if split.unreadable:
            console.print(f"[red]{split.name}: {len(split.unreadable)} files unreadable[/], first {SHOW_PATHS}:")
            for path, reason in split.unreadable[:SHOW_PATHS]:
                console.print(f"  {escape(path)}: {escape(reason)}", soft_wrap=True, highlight=False)
    problems = report.problems()
    if problems:
        console.print(f"[bold red]not ready[/]: {'; '.join(problems)}", highlight=False)
    else:
        console.print(f"[green]ok[/]: {report.dataset} is ready ({sum(s.size for s in report.splits)} images)",
                      highlight=False)
