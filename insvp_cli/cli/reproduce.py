"""``insvp reproduce``: train every run of one of the paper's tables (or list them with ``--dry-run``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..config.limits import MAX_SEEDS
from .app import PAPER, app, console
from .options import TABLE_METAVAR, RunsOpt, SetOpt, split_names, table_name

DEFAULT_RUNS = Path("runs/reproduce")


@app.command(rich_help_panel=PAPER)
def reproduce(
    table: Annotated[str, typer.Argument(help="The paper's table (or figure) to train.", metavar=TABLE_METAVAR,
                                         parser=table_name, show_default=False)],
    data_root: Annotated[Path, typer.Option(help="Folder of the data folders: cub/, nabirds/, ..., vtab-1k/<task>/.",
                                            show_default=False)],
    weights_dir: Annotated[Path | None, typer.Option(
        help="Folder of local backbone weight files, by the recipes' file names (table4: mocov3-vit-b-300ep.pth.tar).",
        show_default=False)] = None,
    methods: Annotated[str | None, typer.Option(metavar="M1,M2,...", help="Comma-separated methods (default: every "
                                                "method of the table).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the runs as insvp train commands, their "
                                                            "estimated image-steps and missing data; train nothing.")]
    = False,
    overrides: SetOpt = None,
    runs: RunsOpt = DEFAULT_RUNS,
    tune: Annotated[bool, typer.Option("--tune", help="Tune each run first: an insvp sweep per run (its method's "
                                                      "default grid) into RUN-tuned; insvp report then shows the "
                                                      "tuned cells, marked.")] = False,
    seeds: Annotated[int, typer.Option(min=1, help="Train every run with this many seeds (RUN, RUN-seed1, ...); "
                                                   "insvp report shows mean ± std (N).", max=MAX_SEEDS)] = 1,
    gpus: Annotated[str | None, typer.Option(metavar="0,1,...", help="Start one worker per GPU, sharing the table's "
                                             "runs; indices count the GPUs this command sees (CUDA_VISIBLE_DEVICES); "
                                             "each worker trains on its GPU only; logs in RUNS/workers/.",
                                             show_default=False)] = None,
) -> None:
    """Train every run of a table of the paper, one after another: finished runs are skipped, interrupted ones resumed.

    With more than one CUDA GPU visible each run uses all of them through torchrun (with --tune: one trial per
    process; start one command per GPU to share the trials). The documentation's page "Reproducing the paper"
    (docs/reproducing.md) lists the data folders.
    """
    from ..config.schema import DEFAULT_METHOD
    from ..experiments.reproduce import runner, workers
    from ..experiments.reproduce import tune as tuning
    from ..runtime.devices import visible_gpus

    names = None if methods is None else split_names(methods, "--methods", DEFAULT_METHOD)
    devices = None if gpus is None else workers.gpu_workers(gpus)  # checked before anything, --dry-run too
    if devices is not None and not dry_run:
        runner.plan_table(table, data_root, runs, names, overrides or [], weights_dir, seeds=seeds)  # fail fast
        args = workers.reproduce_args(table, data_root, runs, seeds, weights_dir, methods, tune, overrides or [])
        if workers.run_workers(args, devices, runs, _say):
            raise typer.Exit(1)
        _say(f"{table}: every worker finished; insvp report --runs {runs} --table {table} shows the table")
        return
    if devices is not None:  # what each worker would plan: one GPU, train.device=cuda
        overrides = [*(overrides or []), f"train.device={devices[0].device}"]
    plan = runner.plan_table(table, data_root, runs, names, overrides or [], weights_dir,
                             ngpus=0 if tune else 1 if devices else visible_gpus(), seeds=seeds)
    if tune:  # a sweep per run
        dry_run_lines, header_lines, execute = tuning.tune_dry_run_lines, tuning.tune_lines, tuning.tune_plan
    else:
        dry_run_lines, header_lines, execute = runner.dry_run_lines, runner.header_lines, runner.run_plan
    if dry_run:
        typer.echo("\n".join(dry_run_lines(plan)))
        for worker in devices or ():
            typer.echo(f"worker on GPU {worker.index}: CUDA_VISIBLE_DEVICES={worker.visible}, the runs above in turn "
                       "with the other workers")
        return
    for line in header_lines(plan):
        _say(line)
    outcome = execute(plan, console)
    if tune:
        summary = (f" --tune: {len(outcome.trained)} sweeps finished, {len(outcome.reused)} already finished, "
                   f"{len(outcome.pending)} still running in other workers, {len(outcome.failed)} without a "
                   "complete trial")
    else:
        others = f", {len(outcome.pending)} trained by other workers" if outcome.pending else ""
        summary = (f": {len(outcome.trained)} trained, {len(outcome.reused)} already finished{others}, "
                   f"{len(outcome.failed)} failed")
    _say(f"{plan.table.name}{summary}; insvp report --runs {runs} --table {plan.table.name} shows the table")
    for name, why in outcome.failed:
        _say(f"  failed: {name}: {why}")
    if outcome.failed:
        raise typer.Exit(1)


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False, soft_wrap=True)
