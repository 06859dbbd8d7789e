"""``insvp compare``: methods trained side by side on one recipe (paper Table 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..common.paths import check_output_folder
from ..config.limits import MAX_SEEDS
from ..methods import COMPARED_BY_DEFAULT
from .app import TRAIN, app, console
from .options import RecipeOpt, SetOpt, out_folder, recipes, split_names


def print_comparison(results, title: str, out: Path, tuned: bool = False) -> None:
    from ..common.tables import rich_table
    from ..experiments.compare import HEADERS, TUNED_HEADERS

    console.print(rich_table(TUNED_HEADERS if tuned else HEADERS, [r.row() for r in results], title, digits=2))
    console.print(f"written: {out / 'comparison.md'}, {out / 'comparison.csv'}", highlight=False)


@app.command(rich_help_panel=TRAIN)
def compare(
    recipe: RecipeOpt = None,
    methods: Annotated[str, typer.Option(metavar="M1,M2,...", help="Comma-separated method names.")] = (
        ",".join(COMPARED_BY_DEFAULT)),
    out: Annotated[Path | None, typer.Option("--out", "-o", metavar="PATH", show_default=False, parser=out_folder(),
                                             help="Folder of the runs (or sweeps) and the tables (default: "
                                                  "runs/compare, with --sweep runs/compare-tuned).")] = None,
    overrides: SetOpt = None,
    sweep: Annotated[bool, typer.Option("--sweep", help="Compare each method at its best: an insvp sweep per method "
                                                        "(the recipe's sweep: section, else the method's default "
                                                        "grid), run or reused, its selected trial tested.")] = False,
    seeds: Annotated[int, typer.Option(min=1, help="Train each method with this many seeds (train.seed, +1, ...; "
                                                   "OUT/METHOD, OUT/METHOD-seed1, ...): accuracies as mean ± std "
                                                   "(N). With --sweep: every trial trains them and the sweep "
                                                   "selects on the mean.", max=MAX_SEEDS)] = 1,
) -> None:
    """Train several methods on the same recipe (same seed, data, schedule) and compare them (paper Table 1)."""
    from ..experiments.compare import compare_runs

    names = split_names(methods, "--methods", ",".join(COMPARED_BY_DEFAULT))
    out = out if out is not None else check_output_folder(Path("runs/compare-tuned" if sweep else "runs/compare"))
    results = compare_runs(recipes(recipe), names, out, overrides or [], console=None, sweep=sweep, seeds=seeds)
    title = f"{', '.join(names)} on {' + '.join(recipe) if recipe else 'the defaults'}"
    if seeds > 1:
        title += f", {seeds} seeds each (mean ± std (N))"
    print_comparison(results, title + (", each at its best validation values" if sweep else ""), out, tuned=sweep)
    missing = [name for name in names if name not in {r.method for r in results}]
    if missing:
        console.print(f"not in the table: {', '.join(missing)} (a sweep still running in another worker, or without "
                      f"a complete trial; see {out}/<method>/sweep.md)", highlight=False, soft_wrap=True)
