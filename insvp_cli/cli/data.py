"""``insvp data``: list the registered datasets, prepare them on disk, check one before a long run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import TOOLS, App, app, console, print_error
from .options import RecipeOpt, SetOpt, out_folder, recipes

if TYPE_CHECKING:
    from ..data.check import CheckReport
    from ..data.prepare.run import Planned

data_app = App(help="Datasets: list them, prepare them on disk, check one before training.", no_args_is_help=True)
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


@data_app.command("prepare")
def prepare(
    names: Annotated[list[str], typer.Argument(
        help="Datasets or groups: all, hta (the ten HTA datasets), fgvc (VPT's five), vtab (the 19 VTAB-1k tasks), or "
             "names such as cifar10, cub, vtab/dtd (--dry-run all lists them).", metavar="NAME", show_default=False)],
    root: Annotated[Path, typer.Option(help="Folder of the dataset folders (the recipes read data/<name>, insvp "
                                            "reproduce --data-root this folder).", parser=out_folder("--root"))] = (
        Path("data")),
    from_dir: Annotated[Path | None, typer.Option(
        "--from", help="Folder of files downloaded by hand (another machine, a browser): found by name, verified and "
                       "used without network.", show_default=False)] = None,
    mirror: Annotated[str | None, typer.Option(
        metavar="URL", help="A mirror serving every file by its name (URL/cifar-10-python.tar.gz), e.g. a campus "
                            "mirror: used instead of the sources' URLs, verified the same way.", show_default=False)]
    = None,
    sources: Annotated[Path | None, typer.Option(
        help="YAML of your own pinned files (per file name: size and sha256 or md5), replacing the table's size and "
             "digest of those files (a mirror's re-packed archives).", show_default=False)] = None,
    retries: Annotated[int, typer.Option(min=0, help="Attempts after a refused or dropped connection, each resuming "
                                                     "the partial file, with exponential backoff.", max=100)] = 5,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files, where each comes from, their sizes and "
                                                            "the total; fetch nothing.")] = False,
) -> None:
    """Download, verify and extract datasets into the layout insvp data list shows, checked as insvp data check does.

    Interrupted downloads resume from their partial file, nothing that verifies is downloaded again, and a dataset
    folder appears only complete. Workers may share --root (one lock per dataset and per file).

    Exit code 0: every dataset ready. 1: one failed (a download, a checksum, an archive, the check; the others are
    still prepared). 2: usage error. 130: interrupted; the same command continues.
    """
    from ..common.errors import UsageError
    from ..data.prepare.run import Display, Options, plan
    from ..data.prepare.run import prepare as run_prepare
    from ..data.prepare.sources import load_pinned

    if mirror is not None and not mirror.startswith(("http://", "https://")):
        raise UsageError(f"--mirror: {mirror!r} is not an http:// or https:// URL")
    options = Options(root, from_dir, mirror, load_pinned(sources) if sources else {}, retries)
    if dry_run:
        _print_plan(plan(list(names), options))
        return
    try:
        failed = run_prepare(list(names), options, Display(console))
    except KeyboardInterrupt:
        print_error("interrupted; the same command continues (partial downloads are kept, partial dataset folders "
               "removed)", label="")
        raise typer.Exit(130) from None
    for line in failed:
        print_error(line)
    if failed:
        raise typer.Exit(1)


def _print_plan(rows: list[Planned]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="insvp data prepare --dry-run")
    for column in ("dataset", "file", "size", "checksum", "comes from"):
        table.add_column(column, justify="right" if column == "size" else "left", overflow="fold")
    fetch, unknown, names = 0, 0, set()
    for row in rows:
        where = {"prepared": "dataset already prepared", "downloaded": "already downloaded",
                 "from": "--from folder", "by hand": f"by hand: {row.source.manual}"}.get(row.state)
        size = "unknown" if row.remote.size is None else _size(row.remote.size)
        if row.state == "download":
            where = row.remote.urls[0]
            if row.remote.name not in names:  # a file that several datasets share is fetched once
                names.add(row.remote.name)
                fetch += row.remote.size or 0
                unknown += row.remote.size is None
        digest = row.remote.digest.split(":")[0] if row.remote.digest else "none published"
        table.add_row(row.source.name, row.remote.name, size, digest, escape(where))
    console.print(table)
    files = len(names)
    more = f" plus {unknown} of unknown size" if unknown else ""
    console.print(f"to download: {files} files, {_size(fetch)}{more}", highlight=False)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return ""


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
