"""``insvp compare`` and ``insvp quickstart``: methods trained side by side on one recipe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import TRAIN, app, console
from .options import RecipeOpt, SetOpt, recipes, split_names


def _print(results, title: str, out: Path) -> None:
    from ..compare import HEADERS
    from .params import rich_table

    console.print(rich_table(HEADERS, [r.row() for r in results], title, digits=2))
    console.print(f"written: {out / 'comparison.md'}, {out / 'comparison.csv'}", highlight=False)


@app.command(rich_help_panel=TRAIN)
def compare(
    recipe: RecipeOpt = None,
    methods: Annotated[str, typer.Option(metavar="M1,M2,...", help="Comma-separated method names.")] = (
        "linear,vpt,insvp"),
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the runs and the tables.")] = Path(
        "runs/compare"),
    overrides: SetOpt = None,
) -> None:
    """Train several methods on the same recipe (same seed, data, schedule) and compare them (paper Table 1)."""
    from ..compare import compare_runs

    names = split_names(methods, "--methods", "linear,vpt,insvp")
    results = compare_runs(recipes(recipe), names, out, overrides or [], console=None)
    _print(results, f"{', '.join(names)} on {', '.join(recipe) if recipe else 'the defaults'}", out)


@app.command(rich_help_panel=TRAIN)
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the quickstart runs.")] = Path("runs/quickstart"),
    pretrain: Annotated[bool, typer.Option("--pretrain", help="Also pretrain the backbone on digits 0-4 instead of "
                                                              "using the shipped one (the command that made it).")]
    = False,
    overrides: SetOpt = None,
) -> None:
    """Offline demo on real MNIST digits: a frozen ViT pretrained on 0-4, InsVP vs linear probe on 5-9."""
    from ..quickstart import quickstart as run

    results = {r.method: r for r in run(out, pretrain=pretrain, overrides=overrides or [])}
    _print(list(results.values()), "digits 5-9 (MNIST-5k), frozen ViT pretrained on digits 0-4", out)
    insvp, linear = results["insvp"].summary["test_acc"], results["linear"].summary["test_acc"]
    console.print(f"InsVP test accuracy {insvp:.2f}% vs linear probe {linear:.2f}% ({insvp - linear:+.2f} points)",
                  highlight=False)
