"""``insvp train``, ``insvp evaluate`` and ``insvp recipes``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from .app import TRAIN, app, console
from .options import CheckpointArg, RecipeOpt, SetOpt, Split, out_folder, recipes


@app.command(rich_help_panel=TRAIN)
def train(
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder, new or empty (default: "
                                                                  "output_dir/run_name).", show_default=False,
                                             parser=out_folder())] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the run in this folder; --set may change only "
                                                     "paths, workers, device, epochs and the optimizer's scalars.",
                                                show_default=False)] = None,
) -> None:
    """Train a method on a dataset; writes config.yaml, metrics.jsonl, best.pt, last.pt and summary.json."""
    from ..train.new_or_resume import train as train_run

    summary, run_dir = train_run(recipes(recipe), overrides or [], out, resume)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process returns the summary; one prints it
        console.print(summary_table(summary))
        console.print(f"run folder: {run_dir}", highlight=False)


def summary_table(summary: dict):
    from rich.table import Table

    table = Table(title=f"{summary['method']} on {summary['dataset']}")
    for column in ("best epoch", "val acc", "test acc (at best val)", "trainable params"):
        table.add_column(column, justify="right")
    table.add_row(str(summary["best_epoch"]), f"{summary['val_acc']:.2f}", f"{summary['test_acc']:.2f}",
                  f"{summary['trainable_params']:,}")
    notes = []
    if "release_protocol_best_test_acc" in summary:
        notes.append(f"release protocol (best test over epochs, selected on test): "
                     f"{summary['release_protocol_best_test_acc']:.2f}")
    skipped = {k: v for k, v in summary.get("skipped_bad_images", {}).items() if v}
    if skipped:
        notes.append("skipped unreadable images: " + ", ".join(f"{v} in {k}" for k, v in skipped.items()))
    table.caption = "\n".join(notes) or None
    return table


@app.command(rich_help_panel=TRAIN)
def evaluate(
    checkpoint: CheckpointArg,
    split: Annotated[Split, typer.Option(help="The split to evaluate.")] = Split.test,
    overrides: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rebuild the model from a checkpoint alone and report its accuracy (e.g. --set data.root=...)."""
    from ..use.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(checkpoint, split.value, overrides or [])
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    line = f"{split.value} accuracy {result['acc']:.2f}% on {result['images']} images ({result['checkpoint']})"
    if result["logged_acc"] is not None:
        same = "matches" if result["logged_acc"] == result["acc"] else "differs from"
        line += f"; {same} the logged {result['logged_acc']:.2f}%"
    if result["skipped_bad_images"]:
        line += f"; {result['skipped_bad_images']} unreadable images skipped"
    console.print(line, highlight=False, soft_wrap=True)
