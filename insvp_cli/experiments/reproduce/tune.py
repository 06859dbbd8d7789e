"""``insvp reproduce --tune``: one ``insvp sweep`` per run of a table, into ``RUN-tuned`` beside the run's folder.

Each sweep searches its method's default space (the protocol's grid) on the run's data, tests the selected trial
and, on VTAB-1k, trains the final run; ``insvp report`` then shows the tuned cells, marked. Start the command once
per GPU or node to share the trials.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from .runner import Outcome, Plan, PlannedRun, missing_data_error, recipe_name, run_args
from .tables import TUNED_SUFFIX


def tuned_dir(run: PlannedRun) -> Path:
    """The sweep folder of a run: beside its untuned run folder, named with :data:`TUNED_SUFFIX`."""
    return run.run_dir.with_name(run.run_dir.name + TUNED_SUFFIX)


def sweep_command(run: PlannedRun) -> list[str]:
    """The ``insvp sweep`` command of a run's sweep (``--tune``)."""
    return ["insvp", "sweep", *run_args(recipe_name(run.spec), run.overrides, tuned_dir(run))]


def tune_lines(plan: Plan) -> list[str]:
    """The overview of ``--tune``: sweeps finished and to run, missing data folders and weights."""
    finished = sum(_sweep_finished(run) for run in plan.runs)
    lines = [
        f"insvp reproduce {plan.table.name} --tune: {plan.table.title}",
        f"{len(plan.runs)} sweeps (one per run: its method's search space, the selected trial tested; VTAB-1k: "
        f"then its final run): {finished} finished, {len(plan.runs) - finished} to run",
        "launch: one trial after another in this process; start this command once per GPU (CUDA_VISIBLE_DEVICES) "
        "or node to share the trials",
    ]
    missing = _missing_tune_data(plan)
    lines += [f"missing data folder: {folder} ({name})" for folder, name in sorted(missing.items())]
    return lines


def tune_dry_run_lines(plan: Plan) -> list[str]:
    """A shell script: the overview as comments, then one ``insvp sweep`` command per run."""
    lines = [f"# {line}" for line in tune_lines(plan)]
    for i, run in enumerate(plan.runs, start=1):
        lines.append(f"# [{i}/{len(plan.runs)}] {run.spec.name}: {'finished' if _sweep_finished(run) else 'to run'}")
        lines.append(shlex.join(sweep_command(run)))
    return lines


def tune_plan(plan: Plan, console) -> Outcome:
    """Run (or reuse, or join) the sweep of every run of the plan, one after another.

    ``trained``: sweeps finished now; ``reused``: finished before; ``failed``: sweeps without a complete trial;
    ``pending``: sweeps whose last trials run in another worker.

    Raises:
        UsageError: before anything runs, a bad search space or a missing data folder.
    """
    from ..sweep.plan import plan_sweep
    from ..sweep.study import run_sweep

    missing = _missing_tune_data(plan)
    if missing:
        raise missing_data_error(plan, missing)
    sweeps = [(run, plan_sweep(recipe_name(run.spec), run.overrides, tuned_dir(run)))
              for run in plan.runs]  # every search space is checked before the first trial
    outcome = Outcome()
    for i, (run, sweep) in enumerate(sweeps, start=1):
        if _sweep_finished(run):
            outcome.reused.append(run.spec.name)
            continue
        console.rule(f"[{i}/{len(sweeps)}] {run.spec.name} (sweep)", style="bold")
        result = run_sweep(sweep, console)
        if not result.complete:
            outcome.pending.append(run.spec.name)
        elif result.best is None:
            outcome.failed.append((run.spec.name, f"no trial completed (see {sweep.out / 'sweep.md'})"))
        else:
            outcome.trained.append(run.spec.name)
    return outcome


def _sweep_finished(run: PlannedRun) -> bool:
    from ..sweep.outputs import finished_test_acc

    return finished_test_acc(tuned_dir(run)) is not None


def _missing_tune_data(plan: Plan) -> dict[Path, str]:
    return plan.missing_data([r for r in plan.runs if not _sweep_finished(r)])
