"""``insvp predict``: classify new images with a trained checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..config.limits import MAX_BATCH, MAX_CLASSES, MAX_WORKERS
from ..use.formats import PREDICTION_FORMATS
from .app import TRAIN, app, console, err_console
from .options import CheckpointArg, DeviceOpt, SetOpt, out_file

SHORT_INPUT = 20  # up to this many files the rows are shown as a table; beyond, a progress bar


@app.command(rich_help_panel=TRAIN)
def predict(
    checkpoint: CheckpointArg,
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders (recursive) or glob patterns (quoted).",
                                                metavar="INPUT...", show_default=False)],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Classes per image (at most the number of classes).",
                                       metavar="K", min=1, max=MAX_CLASSES)] = 5,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the rows to FILE.csv or FILE.jsonl "
                                             "(atomically). Without it: a table for short inputs, CSV on stdout "
                                             "for long ones.", metavar="PATH", show_default=False,
                                             parser=out_file(*PREDICTION_FORMATS))] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per batch (default: the checkpoint's "
                                                   "data.batch_size).", metavar="N", show_default=False, min=1,
                                                   max=MAX_BATCH)] = None,
    device: DeviceOpt = "auto",
    workers: Annotated[int | None, typer.Option(help="Loader worker processes (default: the checkpoint's "
                                                "data.num_workers; at most the CPUs this process may use).",
                                                metavar="N", show_default=False, min=0, max=MAX_WORKERS)] = None,
    overrides: SetOpt = None,
) -> None:
    """Classify image files with a checkpoint's model: path, top-k classes and probabilities per image.

    Images go through the checkpoint's evaluation transform, in batches. Files that cannot be read as
    images are listed on stderr with the reason and skipped; the exit status is then 1 (0 when every
    file was classified). --set overrides change the checkpoint's config, e.g. backbone.weights=PATH.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..use.inputs import InputFiles

    files = InputFiles.find(inputs, exclude=out)  # a missing input is answered before torch is imported
    from ..use.predict import predict as run_predict
    from ..use.predict import write_predictions

    short = len(files) <= SHORT_INPUT
    with Progress(TextColumn("[bold]images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, redirect_stdout=False, redirect_stderr=False,
                  disable=short or not err_console.is_terminal) as progress:
        task = progress.add_task("images", total=len(files))
        # short inputs keep their rows for the table; long ones stream them to the file or to stdout
        result = run_predict(checkpoint, files, out=None if short else (out or sys.stdout), top_k=top_k,
                             batch_size=batch_size, device=device, workers=workers, overrides=overrides or [],
                             on_batch=lambda n: progress.advance(task, n))
    if short:
        console.print(_table(result.rows))
        if out is not None:
            write_predictions(result.rows, out, result.top_k)
    for bad in result.skipped:
        err_console.print(f"skipped {bad.path}: {bad.reason}", highlight=False, soft_wrap=True, markup=False)
    written = f"; rows in {out}" if out is not None else ""
    err_console.print(f"{result.images} images classified, {len(result.skipped)} skipped, "
                      f"{result.images_per_s:.1f} images/s{written}", highlight=False, soft_wrap=True, markup=False)
    if result.skipped:
        raise typer.Exit(1)


def _table(rows):
    from rich.table import Table
    from rich.text import Text

    table = Table()
    table.add_column("image", overflow="fold")
    table.add_column("class")
    table.add_column("probability", justify="right")
    others = any(len(r.classes) > 1 for r in rows)
    if others:
        table.add_column("next")
    for row in rows:
        # Text, not markup: a path or class name may hold square brackets
        cells = [Text(row.path), Text(row.classes[0]), f"{row.probabilities[0]:.1%}"]
        if others:
            cells.append(Text(", ".join(f"{c} {p:.1%}" for c, p in zip(row.classes[1:], row.probabilities[1:],
                                                                        strict=True))))
        table.add_row(*cells)
    return table
