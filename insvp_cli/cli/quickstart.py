"""``insvp quickstart``: the offline demo, InsVP against a linear probe on real digits."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import TRAIN, app, console
from .compare import print_comparison
from .options import SetOpt, out_folder


@app.command(rich_help_panel=TRAIN)
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the quickstart runs.", parser=out_folder())] = (
        Path("runs/quickstart")),
    pretrain: Annotated[bool, typer.Option("--pretrain", help="Also pretrain the backbone on digits 0-4 instead of "
                                                              "using the shipped one (the command that made it).")]
    = False,
    overrides: SetOpt = None,
) -> None:
    """Offline demo on real MNIST digits: a frozen ViT pretrained on 0-4, InsVP vs linear probe on 5-9."""
    from ..experiments.quickstart import quickstart as run

    results = run(out, pretrain=pretrain, overrides=overrides or [])
    print_comparison(results, "digits 5-9 (MNIST-5k), frozen ViT pretrained on digits 0-4", out)
    ours, probe = (r.summary["test_acc"] for r in results)  # in the order of quickstart.METHODS
    console.print(f"InsVP test accuracy {ours:.2f}% vs linear probe {probe:.2f}% ({ours - probe:+.2f} points)",
                  highlight=False)
