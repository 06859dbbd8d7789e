"""``insvp sweep``: choose hyper-parameters on the validation split (grid or TPE on Optuna), then test the choice."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..common.errors import RunInterrupted
from ..config.limits import MAX_SEEDS, MAX_TRIALS
from .app import TRAIN, app, console
from .options import RecipeOpt, SetOpt, out_folder, recipes


class Sampler(str, Enum):
    grid = "grid"
    tpe = "tpe"


@app.command(rich_help_panel=TRAIN)
def sweep(
    out: Annotated[Path, typer.Option("--out", "-o", metavar="PATH", show_default=False, parser=out_folder(),
                                      help="Sweep folder: trials/, study.journal, sweep.md, best.yaml, ... The same "
                                           "for every worker.")],
    recipe: RecipeOpt = None,
    overrides: SetOpt = None,
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", metavar="KEY=[V1,...]", show_default=False,
        help="Search KEY over these values (YAML list), e.g. train.lr=[0.001,0.01]. Repeatable.")] = None,
    ranges: Annotated[list[str] | None, typer.Option(
        "--range", metavar="KEY=LO:HI[:log]", show_default=False,
        help="Search KEY in [LO, HI] (log-uniform with :log); needs --sampler tpe. Repeatable.")] = None,
    sampler: Annotated[Sampler, typer.Option(help="grid: every point of the grids once; tpe: --trials N trials of "
                                                  "Optuna's TPE.")] = Sampler.grid,
    trials: Annotated[int | None, typer.Option(metavar="N", show_default=False, min=1, max=MAX_TRIALS,
                                               help="Trials of --sampler tpe.")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Stop trials whose validation accuracy is below the median "
                                                        "of earlier trials at the same epoch.")] = False,
    storage: Annotated[str | None, typer.Option(metavar="URL", show_default=False,
                                                help="Optuna storage URL shared by the workers, e.g. sqlite:///s.db or "
                                                     "postgresql://user@host/db (default: OUT/study.journal).")] = None,
    study: Annotated[str | None, typer.Option(metavar="NAME", show_default=False,
                                              help="Study name in the storage (default: the --out path).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per trial (trial-NNNN, trial-NNNN-seed1, ...): select on "
                                                   "the mean of their best validation accuracies.", max=MAX_SEEDS)] = 1,
) -> None:
    """Search hyper-parameters on the validation split, as the works InsVP compares with did.

    Each trial is a run folder under OUT/trials; its objective is its best validation accuracy and it never
    sees the test split. The search space comes from the recipes' sweep: sections and --grid / --range, else
    the method's default learning-rate x weight-decay grid. At the end the selected trial is evaluated on the
    test split, and datasets with a final protocol (VTAB-1k) train the final run. Start the same command
    several times (one per GPU or node) to share the work; rerun it after an interruption to continue.
    """
    from ..experiments.sweep.plan import plan_sweep

    plan = plan_sweep(recipes(recipe), overrides or [], out, grid or [], ranges or [], sampler.value, trials, prune,
                      storage, study, seeds)
    from ..experiments.sweep.study import run_sweep  # Optuna and torch: once the sweep is known to be good

    unit = "point" if plan.sampler == "grid" else "trial"
    console.print(f"sweep {plan.base.method.name} on {plan.base.data.name}: {plan.size} {unit}"
                  f"{'s' if plan.size != 1 else ''} of "
                  f"{'; '.join(d.describe() for d in plan.space)} -> {plan.out}", highlight=False, soft_wrap=True)
    try:
        result = run_sweep(plan, console)
    except (KeyboardInterrupt, RunInterrupted):
        console.print(f"interrupted; the same command continues the sweep in {plan.out} (finished trials are kept, "
                      "the interrupted one resumes)", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    print_result(result)
    if result.complete and result.best is None:
        console.print("no trial completed; see the notes in the table", style="red")
        raise typer.Exit(1)


def print_result(result) -> None:
    """The sweep's table, its summary lines and the files written."""
    from ..common.tables import rich_table
    from ..experiments.sweep.outputs import summary_lines, table_rows

    headers, rows = table_rows(result)
    console.print(rich_table(headers, rows, f"sweep {result.sweep.out}", digits=2))
    for line in summary_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
    if not result.complete:
        console.print("no point is left to start here; the sweep finishes when the trials of the other workers end "
                      "(rerun this command then for the final results)", highlight=False, soft_wrap=True)
    console.print(f"written: {', '.join(str(p) for p in result.files)}", highlight=False, soft_wrap=True)
