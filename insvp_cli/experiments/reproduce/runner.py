"""``insvp reproduce``: the runs of one table of the paper, planned, listed (``--dry-run``) and trained.

A plan resolves every run of the table (recipe < the table's overrides < ``data.root`` under
``--data-root`` < ``--weights-dir`` < the user's ``--set``) and asks the run queue what its folder holds
(:func:`~insvp_cli.experiments.queue.status`): ``done`` (skipped), ``resume`` (continued from its last epoch),
``new``, ``held`` (another worker trains it now) or ``conflict`` (a run of other settings: nothing is trained
until it is moved away or the settings match, so a table never mixes two protocols silently).

A run whose method needs something its data does not provide (TransHP on a dataset without a coarse-label
hierarchy: put ``hierarchy.yaml`` in its data folder) is listed with what is missing, and nothing is
trained until it is there, as for a missing data folder.

Runs are trained one after another. With at most one CUDA GPU visible each run is trained in this
process (``fit``, exactly as ``insvp train``). With more, each run is a ``torchrun --nproc_per_node <ngpus>
-m insvp_cli train ...`` subprocess on all of them; ``data.batch_size`` is the global batch and is split
over the processes, so the optimisation (steps per epoch, learning-rate schedule) is the single-GPU one.
The commands that ``--dry-run`` prints are exactly those runs, copy-pasteable.
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ...common.errors import RunFinished, RunInUse, TrainingDiverged, UsageError
from ...config.overrides import format_override
from ...config.schema import Config
from ...data.registry import DATASETS
from ...resolve.layers import resolve_config
from ...resolve.needs import MissingNeed, bind_requirements
from ..queue import QueuedRun, status
from .sizes import image_steps
from .tables import TABLES, RunSpec, TableDef

State = Literal["done", "resume", "new", "conflict", "held"]
Launcher = Literal["process", "torchrun"]


@dataclass
class PlannedRun:
    """One run of a plan.

    Attributes:
        spec: the table's run.
        run_dir: its folder under ``--runs``.
        cfg: the resolved config it trains with.
        overrides: every ``--set`` value on top of the recipe, in order.
        state: ``done``, ``resume``, ``new`` or ``conflict``.
        launcher: ``process`` (this process) or ``torchrun`` (a subprocess on every GPU).
        command: the equivalent command line (empty for a finished run).
        image_steps: epochs x training images (``None``: a dataset of unknown size).
        conflict: what differs from the run already in ``run_dir`` (state ``conflict``).
        missing_need: what the method needs and the data does not provide (``None``: nothing).
    """

    spec: RunSpec
    run_dir: Path
    cfg: Config
    overrides: tuple[str, ...]
    state: State
    launcher: Launcher
    command: list[str]
    image_steps: int | None
    conflict: str = ""
    missing_need: MissingNeed | None = None

    @property
    def pending(self) -> bool:
        return self.state in ("new", "resume", "held")


@dataclass
class Plan:
    """Every run of one table with its state; see :func:`plan_table`."""

    table: TableDef
    methods: list[str]
    runs: list[PlannedRun]
    data_root: Path
    ngpus: int

    def pending(self) -> list[PlannedRun]:
        return [r for r in self.runs if r.pending]

    def count(self, state: State) -> int:
        return sum(r.state == state for r in self.runs)

    def missing_data(self, runs: list[PlannedRun] | None = None) -> dict[Path, str]:
        """Data folders that ``runs`` (default: the runs still to train) need and that do not exist: folder ->
        dataset name."""
        return {Path(r.cfg.data.root): r.cfg.data.name for r in (self.pending() if runs is None else runs)
                if r.spec.data_folder is not None and not Path(r.cfg.data.root).expanduser().is_dir()}

    def missing_weights(self) -> list[Path]:
        """Local backbone weight files that runs still to train need and that do not exist."""
        files = {Path(r.cfg.backbone.weights) for r in self.pending()
                 if r.cfg.backbone.weights not in ("timm", "none") and not r.cfg.backbone.weights.startswith("asset:")}
        return sorted(p for p in files if not p.expanduser().is_file())

    def missing_needs(self) -> list[PlannedRun]:
        """Runs still to train whose method needs something their data does not provide."""
        return [r for r in self.pending() if r.missing_need]

    def steps_to_train(self) -> tuple[int, int]:
        """(known image-steps of the runs to train, how many of them have an unknown size)."""
        steps = [r.image_steps for r in self.pending()]
        return sum(s for s in steps if s is not None), sum(s is None for s in steps)


@dataclass
class Outcome:
    """What :func:`run_plan` (or :func:`tune_plan`) did: run names trained, reused (finished before), failed (with
    why) and, for sweeps, pending (their last trials run in another worker)."""

    trained: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def plan_table(table: TableDef | str, data_root: Path, runs_dir: Path, methods: list[str] | None = None,
               overrides: list[str] | tuple[str, ...] = (), weights_dir: Path | None = None,
               ngpus: int = 0, seeds: int = 1) -> Plan:
    """Resolve every run of ``table`` and find its state; no data is read and nothing is trained.

    Args:
        table: a registered table name or definition.
        data_root: the folder that holds the data folders (:data:`~insvp_cli.experiments.reproduce.tables.HTA_FOLDERS`,
            ``vtab-1k/<task>``).
        runs_dir: where the run folders go (``<runs_dir>/<run name>``).
        methods: only the cells of these methods (default: every method of the table).
        overrides: the user's ``--set`` values, applied to every run last.
        weights_dir: where local backbone weight files are: a recipe's local weights path is replaced by
            ``weights_dir / <its file name>`` (``timm`` tags are left to timm's cache).
        ngpus: visible CUDA GPUs; more than one launches each run with ``torchrun`` on all of them.
        seeds: train every run with this many seeds: its folder for the first, ``<run>-seed<k>`` with ``train.seed``
            raised by ``k`` for the others (:mod:`insvp_cli.experiments.queue`); ``insvp report`` shows mean ± std (N).

    Raises:
        UsageError: unknown table or method, a bad override, a batch size that does not split over the GPUs.
    """
    table = TABLES.get(table) if isinstance(table, str) else table
    selected = table.select(methods)
    runs = [run for spec in table.runs(methods)
            for run in _plan_run(spec, data_root, runs_dir, tuple(overrides), weights_dir, ngpus, seeds)]
    return Plan(table, list(dict.fromkeys(c.method for c in selected)), runs, data_root, ngpus)


def _plan_run(spec: RunSpec, data_root: Path, runs_dir: Path, user: tuple[str, ...], weights_dir: Path | None,
              ngpus: int, seeds: int) -> list[PlannedRun]:
    """The run of ``spec`` and its other seeds (:meth:`~insvp_cli.experiments.queue.QueuedRun.seed`), planned."""
    recipe = recipe_name(spec)
    base = [*spec.overrides, *([f"data.root={data_root / spec.data_folder}"] if spec.data_folder else [])]
    overrides = [*base, *_weights_override(recipe, base, weights_dir), *user]
    cfg = resolve_config(recipe, overrides, bind=False)  # bound below, where a missing need is kept, not raised
    launcher: Launcher = "torchrun" if ngpus > 1 and cfg.train.device in ("auto", "cuda") else "process"
    if launcher == "torchrun":
        per_process, rest = divmod(cfg.data.batch_size, ngpus)
        if rest or not per_process:
            raise UsageError(f"{spec.name}: data.batch_size {cfg.data.batch_size} (the global batch) does not split "
                             f"over {ngpus} GPUs; set --set data.batch_size=N with N a multiple of {ngpus}, or "
                             "limit the GPUs with CUDA_VISIBLE_DEVICES")
        overrides.append(f"data.batch_size={per_process}")
        cfg = resolve_config(recipe, overrides, bind=False)
    missing_need = None
    try:  # the config a run folder stores holds the values that follow from the data (TransHP's coarse classes)
        cfg = bind_requirements(cfg)
    except MissingNeed as exc:
        missing_need = exc
    first = QueuedRun(cfg, runs_dir / spec.name)
    planned = []
    for k in range(seeds):
        queued = first.seed(k)
        seeded = dataclasses.replace(spec, name=queued.folder.relative_to(runs_dir).as_posix())
        placement = status(queued)
        sets = (*overrides, *(first.seed_overrides(k) if k else []))
        run = PlannedRun(seeded, queued.folder, queued.config, sets, placement.status, launcher, [],
                         image_steps(queued.config), placement.detail if placement.status == "conflict" else "",
                         missing_need)
        if run.pending:
            run.command = _command(run, recipe, ngpus, placement.moved)
        planned.append(run)
    return planned


def _weights_override(recipe: str | None, base: list[str], weights_dir: Path | None) -> list[str]:
    if weights_dir is None:
        return []
    weights = resolve_config(recipe, base, bind=False).backbone.weights
    if weights in ("timm", "none") or weights.startswith("asset:"):
        return []
    return [f"backbone.weights={weights_dir / Path(weights).name}"]


def recipe_name(spec: RunSpec) -> str | None:
    """The shipped recipe of a run, by name (``cub``, ``vtab/dtd``): commands that work from any folder."""
    return spec.recipe.removesuffix(".yaml") if spec.recipe is not None else None


def _command(run: PlannedRun, recipe: str | None, ngpus: int, location: dict[str, Any]) -> list[str]:
    # --standalone: a single-node rendezvous on a free port, so two launches on one host never collide
    head = (["torchrun", "--standalone", "--nproc_per_node", str(ngpus), "-m", "insvp_cli", "train"]
            if run.launcher == "torchrun"
            else ["insvp", "train"])
    if run.state == "resume":
        # `--resume` rebuilds the run from its own config.yaml; only moved folders or devices need saying
        sets = [format_override(k, v) for k, v in location.items() if k not in ("output_dir", "run_name")]
        return [*head, "--resume", str(run.run_dir), *(x for s in sets for x in ("--set", s))]
    return [*head, *run_args(recipe, run.overrides, run.run_dir)]


def run_args(recipe: str | None, overrides: tuple[str, ...], out: Path) -> list[str]:
    """``--recipe R --set ... --out DIR``: a new run (or sweep) of ``recipe`` with ``overrides`` into ``out``."""
    return [*(["--recipe", recipe] if recipe is not None else []), *(x for s in overrides for x in ("--set", s)),
            "--out", str(out)]


# --------------------------------------------------------------------------------------------------
# Showing and running a plan


def prepare_command(plan: Plan, missing: dict[Path, str]) -> str:
    """The ``insvp data prepare`` command that makes the missing data folders (``""``: none can)."""
    from ...data.prepare.sources import prepare_command

    return prepare_command([Path(f).relative_to(plan.data_root).as_posix() for f in sorted(missing)], plan.data_root)


def missing_data_error(plan: Plan, missing: dict[Path, str]) -> UsageError:
    """The error of a plan whose runs need data folders that are not there."""
    command = prepare_command(plan, missing)
    return UsageError(f"missing data folders under {plan.data_root}: {', '.join(map(str, sorted(missing)))} "
                      f"(insvp reproduce {plan.table.name} --dry-run shows the expected layouts"
                      + (f"; {command} fetches them)" if command else ")"))


def header_lines(plan: Plan) -> list[str]:
    """The overview: runs by state, estimated work, launcher, missing data folders and weight files."""
    table, pending = plan.table, plan.pending()
    steps, unknown = plan.steps_to_train()
    lines = [
        f"insvp reproduce {table.name}: {table.title}",
        f"{len(plan.runs)} runs ({len(plan.methods)} method{'s' if len(plan.methods) != 1 else ''}: "
        f"{', '.join(plan.methods)}): {plan.count('done')} done, {plan.count('resume')} to resume, "
        f"{plan.count('new')} to train" + (f", {plan.count('conflict')} in conflict" if plan.count("conflict") else ""),
        f"estimated work: {steps:,} image-steps (epochs x training images) for the {len(pending)} runs to go"
        + (f", plus {unknown} of unknown size" if unknown else ""),
        (f"launch: torchrun on {plan.ngpus} GPUs per run (data.batch_size split over them)" if plan.ngpus > 1
         else "launch: one run after another in this process"),
    ]
    missing = plan.missing_data()
    if missing:
        lines.append(f"missing data folders under {plan.data_root} ({len(missing)}):")
        lines += [f"  {folder}  ({name})" for folder, name in sorted(missing.items())]
        lines += [f"  {name} expects: {DATASETS.get(name).layout}" for name in sorted(set(missing.values()))]
        command = prepare_command(plan, missing)
        lines += [f"  {command} fetches them"] if command else []
    elif pending:
        lines.append(f"data: every data folder is present under {plan.data_root}")
    lines += [f"missing backbone weights: {path} (pass --weights-dir DIR or --set backbone.weights=PATH)"
              for path in plan.missing_weights()]
    needs: dict[tuple[str, str, str], list[str]] = {}
    for r in plan.missing_needs():
        key = (r.missing_need.method, r.missing_need.need.what, r.missing_need.need.how)
        needs.setdefault(key, []).append(r.cfg.data.root or r.cfg.data.name)
    lines += [f"method {method} needs {what}, missing for {len(data)} data folders ({', '.join(data)}): {how}"
              for (method, what, how), data in needs.items()]
    lines += [f"conflict: {r.run_dir} holds a run with other settings ({r.conflict}); move it away or pass the "
              f"same settings" for r in plan.runs if r.state == "conflict"]
    return lines


def dry_run_lines(plan: Plan) -> list[str]:
    """A shell script: the overview as comments, then each run's command (finished runs as comments)."""
    lines = [f"# {line}" for line in header_lines(plan)]
    for i, run in enumerate(plan.runs, start=1):
        steps = f"{run.image_steps:,} image-steps" if run.image_steps is not None else "unknown size"
        lines.append(f"# [{i}/{len(plan.runs)}] {run.spec.name}: {run.state}, {steps}")
        source = f" ({run.cfg.method.published.source})" if run.cfg.method.protocol == "published" else ""
        lines.append(f"#   protocol {run.cfg.method.protocol}: {run.cfg.train.describe()}{source}")
        if run.pending:
            lines.append(shlex.join(run.command))
    return lines


def run_plan(plan: Plan, console) -> Outcome:
    """Train the plan's pending runs one after another; finished runs are reused.

    A run that diverges (or, under torchrun, exits with an error) is recorded as failed and the next run
    starts: one bad baseline does not stop a table of a hundred runs.

    Raises:
        UsageError: before anything is trained, when runs conflict, data folders or weight files are missing, or
            a method needs what its data does not provide.
    """
    conflicts = [r for r in plan.runs if r.state == "conflict"]
    if conflicts:
        raise UsageError(f"{len(conflicts)} run folders hold runs with other settings, e.g. {conflicts[0].run_dir} "
                         f"({conflicts[0].conflict}); move them away, choose another --runs, or pass the same --set")
    missing = plan.missing_data()
    if missing:
        raise missing_data_error(plan, missing)
    weights = plan.missing_weights()
    if weights:
        raise UsageError(f"missing backbone weights: {', '.join(map(str, weights))}; pass --weights-dir DIR or "
                         "--set backbone.weights=PATH")
    needs = plan.missing_needs()
    if needs:
        raise UsageError(f"{len(needs)} runs need what their data does not provide, e.g. {needs[0].spec.name}: "
                         f"{needs[0].missing_need}")
    outcome = Outcome(reused=[r.spec.name for r in plan.runs if r.state == "done"])
    pending = plan.pending()
    for i, run in enumerate(pending, start=1):
        done = len(outcome.reused) + len(outcome.trained)
        console.rule(f"[{i}/{len(pending)}] {run.spec.name} ({run.state}) · {done}/{len(plan.runs)} runs done",
                     style="bold")
        try:
            error = _train(run, console)
        except RunInUse:  # another worker trains it: this one goes on with the next run
            outcome.pending.append(run.spec.name)
            console.print(f"skipped: {run.spec.name} is being trained by another worker", highlight=False)
            continue
        except RunFinished:  # another worker finished it since the plan was made
            outcome.reused.append(run.spec.name)
            console.print(f"reused: {run.spec.name} was finished by another worker", highlight=False)
            continue
        if error is None:
            outcome.trained.append(run.spec.name)
        else:
            outcome.failed.append((run.spec.name, error))
            console.print(f"failed: {run.spec.name}: {error}", style="red", highlight=False)
    return outcome


def _train(run: PlannedRun, console) -> str | None:
    """Train one run; ``None`` on success, else why it failed."""
    if run.launcher == "torchrun":
        # `python -m torch.distributed.run` is what the torchrun script runs; it needs no PATH lookup
        argv = [sys.executable, "-m", "torch.distributed.run", *run.command[1:]]
        code = subprocess.run(argv).returncode
        return None if code == 0 else f"torchrun exited with code {code}"
    from ...train.loop import fit  # torch: only when something trains

    try:  # the plan decided what this run is (status); fit checks again holding the folder's lock
        fit(run.cfg, run.run_dir, console=console)
    except TrainingDiverged as exc:
        return str(exc)
    return None

