"""``insvp quickstart``: the offline demo, InsVP against a linear probe on the same frozen backbone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .app import app, console
from .options import SetOpt


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the quickstart runs.")] = Path("runs/quickstart"),
    pretrain: Annotated[bool, typer.Option(help="Also pretrain the backbone on digits 0-4 instead of using the "
                                                "shipped one (the command that made it).")] = False,
    overrides: SetOpt = None,
) -> None:
    """Offline demo on real MNIST digits: a frozen ViT pretrained on 0-4, InsVP vs linear probe on 5-9."""
    from ..quickstart import quickstart as run

    result = run(out, pretrain=pretrain, overrides=overrides or [])
    table = Table(title="digits 5-9, frozen ViT pretrained on digits 0-4 (MNIST-5k)")
    for column in ("method", "trainable params", "val acc", "test acc"):
        table.add_column(column, justify="right" if column != "method" else "left")
    for method, s in result.summaries.items():
        table.add_row(method, f"{s['trainable_params']:,}", f"{s['val_acc']:.2f}", f"{s['test_acc']:.2f}")
    console.print(table)
    console.print(f"InsVP test accuracy {result.summaries['insvp']['test_acc']:.2f}% vs linear probe "
                  f"{result.summaries['linear']['test_acc']:.2f}% ({result.margin:+.2f} points). Runs: {out}",
                  highlight=False)
