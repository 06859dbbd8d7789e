"""``insvp train`` and ``insvp evaluate``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..config import resolve_config
from ..errors import UsageError
from .app import app, console
from .options import RecipeOpt, SetOpt


@app.command()
def train(
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default: output_dir/run_name).",
                                                show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue the interrupted run in this folder.",
                                                   show_default=False)] = None,
) -> None:
    """Train a method on a dataset; writes config.yaml, metrics.jsonl, best.pt, last.pt and summary.json."""
    from ..training import fit, load_run_config

    if resume is not None:
        if recipe:
            raise UsageError("--resume continues a run with its own config.yaml; drop --recipe")
        cfg, run_dir = load_run_config(resume, overrides or []), resume
    else:
        cfg, run_dir = resolve_config(recipe, overrides or []), out
        if run_dir is not None and (run_dir / "config.yaml").exists():
            raise UsageError(f"--out {run_dir} already holds a run; continue it with --resume {run_dir} "
                             f"or choose another folder")
    summary = fit(cfg, run_dir)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every process returns the summary; one prints it
        console.print(summary_table(summary))


def summary_table(summary: dict) -> Table:
    table = Table(title=f"{summary['method']} on {summary['dataset']}")
    for column in ("best epoch", "val acc", "test acc (at best val)", "trainable params"):
        table.add_column(column, justify="right")
    table.add_row(str(summary["best_epoch"]), f"{summary['val_acc']:.2f}", f"{summary['test_acc']:.2f}",
                  f"{summary['trainable_params']:,}")
    if "release_protocol_best_test_acc" in summary:
        table.caption = (f"release protocol (best test over epochs, selected on test): "
                         f"{summary['release_protocol_best_test_acc']:.2f}")
    return table


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint (best.pt / last.pt) or a run folder.")],
    split: Annotated[str, typer.Option(help="val or test.")] = "test",
    overrides: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rebuild the model from a checkpoint alone and report its accuracy (e.g. --set data.root=...)."""
    from ..training import evaluate_checkpoint

    if split not in ("val", "test"):
        raise UsageError(f"--split: {split!r} is not valid; valid: val, test")
    result = evaluate_checkpoint(checkpoint, split, overrides or [])
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    line = f"{split} accuracy {result['acc']:.2f}% on {result['images']} images ({result['checkpoint']})"
    if result["logged_acc"] is not None:
        same = "matches" if result["logged_acc"] == result["acc"] else "differs from"
        line += f"; {same} the logged {result['logged_acc']:.2f}%"
    console.print(line, highlight=False)
