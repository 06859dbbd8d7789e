"""``insvp sweep``: hyper-parameters chosen on the validation split, the protocol behind InsVP's comparisons.

InsVP (ACM MM 2024) compares with numbers from VPT, E2VPT, DAM-VP and others, which chose the learning rate
and weight decay of every method on every dataset on the validation split (VPT: a grid, ``tune_fgvc.py`` and
``tune_vtab.py``); InsVP's own values are in a supplement that is not public. This module is that protocol,
on Optuna:

- Search space: grids (Optuna's ``GridSampler``, every point once) or ranges (``TPESampler``, ``--trials N``),
  from the recipes' ``sweep:`` sections and ``--grid`` / ``--range``, else :func:`default_space` (the method's
  protocol's grid).
- Trials: each trial is an ordinary run folder, ``OUT/trials/trial-NNNN``, trained by
  :func:`~insvp_cli.training.fit`; its objective is its best validation accuracy. Trials never see the test
  split: ``fit(final_test=False)``, ``train.test_every_epoch`` off, and a dataset's own search splits where it
  defines them (VTAB-1k: ``train800`` / ``val200``). Validation accuracy is reported to Optuna after every
  evaluated epoch, so ``--prune`` (median pruner) can stop a trial early; its folder stays.
- Selection: the highest best-validation accuracy among complete trials; a tie goes to the earlier best epoch
  (the cheaper run), then to the earlier trial. Pruned and failed (diverged, out of memory) trials are shown
  but never selected.
- Result: the selected trial's ``best.pt`` is evaluated on the test split once; where the dataset defines a
  final run (VTAB-1k: ``train800val200``), that run is trained with the chosen values into ``OUT/final`` and its
  test accuracy is the result. ``sweep.md``, ``sweep.csv``, ``sweep.json``, ``sweep.png`` and ``best.yaml``
  (a recipe delta: ``insvp train --recipe R --recipe OUT/best.yaml`` trains the selected trial again).

Workers: any number of processes started with the same command share one study (default storage: the
journal file ``OUT/study.journal``; ``--storage URL``: any Optuna storage URL) and the folder ``OUT`` (on
several machines: a shared file system). A worker claims a trial while holding the file lock
``OUT/locks/sweep.lock``, after checking that a point is left, so the sampler never hands out a point twice.
Each worker also holds its own lock file, ``OUT/locks/worker-*.lock``, for as long as it lives; the operating
system releases it when the process dies. A trial still RUNNING whose worker's lock is free was interrupted:
it is marked failed and retried with Optuna's ``RetryHeartbeatStaleTrialCallback``, whose retry keeps the point and
the run folder, so it resumes from ``resume.pt``. A trial stopped by Ctrl-C or an error that is not the
trial's own (a missing data folder) is retried the same way by the next worker or the next run.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock, Timeout

from .backbone import first_sentence
from .checkpoint import atomic_write_text
from .config import Config
from .data import DATASETS
from .errors import ConfigError, UsageError
from .render import csv_table, markdown_table, short_value
from .requirements import bind_requirements
from .resolve import (
    SWEEP_KEY,
    Recipe,
    flatten,
    format_override,
    load_recipe,
    parse_override,
    recipe_list,
    resolve_config,
)
from .rundir import LOCATION_KEYS, SUMMARY, is_run, load_run_config, read_metrics, setting_differences
from .training import evaluate_checkpoint, fit, run_or_reuse

GridValue = str | int | float | bool | None
SAMPLERS = ("grid", "tpe")
JOURNAL = "study.journal"
TRIALS = "trials"
FINAL = "final"
RESULT = "sweep.json"
# every trial: the test split is never evaluated during a search
TRIAL_OVERRIDES = ("train.test_every_epoch=false",)
PRUNE_STARTUP_TRIALS = 3  # the median pruner compares with this many finished trials before it prunes any


def default_space(cfg: Config) -> dict[str, list[Any]]:
    """The search space when neither the recipes' sweep sections nor ``--grid`` / ``--range`` give one: the
    method's default grid under its protocol (:meth:`~insvp_cli.config.MethodConfig.default_grid`)."""
    return cfg.method.default_grid(cfg.data.batch_size)


# --------------------------------------------------------------------------------------------------
# The search space


@dataclass(frozen=True)
class Dimension:
    """One swept config key: a grid of ``values``, or a range ``[low, high]`` (log-uniform with ``log``).

    Attributes:
        key: the config key path, e.g. ``train.lr``; also the Optuna parameter name.
        values: the grid (empty for a range).
        low, high: the range (``None`` for a grid).
        log: sample the range log-uniformly.
        integer: the key holds an integer (``method.prompt_len``): the range is sampled as integers.
    """

    key: str
    values: tuple[GridValue, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_grid(self) -> bool:
        return self.low is None

    def describe(self) -> str:
        if self.is_grid:
            return f"{self.key}=[{', '.join(short_value(v) for v in self.values)}]"
        return f"{self.key}={short_value(self.low)}:{short_value(self.high)}" + (":log" if self.log else "")

    def to_json(self) -> dict[str, Any]:
        if self.is_grid:
            return {"key": self.key, "values": list(self.values)}
        return {"key": self.key, "low": self.low, "high": self.high, "log": self.log, "integer": self.integer}

    def suggest(self, trial) -> GridValue:
        """This dimension's value in an Optuna trial."""
        if self.is_grid:
            return trial.suggest_categorical(self.key, list(self.values))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)


def parse_grid(text: str) -> tuple[str, Any]:
    """``KEY=[v1, v2, ...]`` (values in YAML) -> ``(KEY, [v1, v2, ...])``."""
    key, sep, raw = text.partition("=")
    try:
        values = yaml.safe_load(raw) if sep else None
    except yaml.YAMLError as exc:
        raise UsageError(f"--grid {text!r}: the values are not valid YAML ({exc.problem})") from None
    if not key.strip() or not isinstance(values, list):
        raise UsageError(f"--grid {text!r}: expected KEY=[v1, v2, ...], e.g. train.lr=[0.001, 0.01]")
    return key.strip(), values


def parse_range(text: str) -> tuple[str, str]:
    """``KEY=LOW:HIGH[:log]`` -> ``(KEY, "LOW:HIGH[:log]")``; the range itself is checked with its key."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise UsageError(f"--range {text!r}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log, e.g. train.lr=1e-4:1e-1:log")
    return key.strip(), raw.strip()


def section_space(recipes: Sequence[dict[str, Any]], method: str, names: Sequence[str]) -> dict[str, Any]:
    """The search space of ``method`` in the recipes' ``sweep:`` sections (later recipes win, key by key).

    A section maps config keys to grids (``[v1, v2]``) or ranges (``"LOW:HIGH[:log]"``); its ``methods: {M:
    {...}}`` entries apply to method M only and win over the section's other keys.
    """
    from .methods import METHODS

    common: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for tree, name in zip(recipes, names, strict=True):
        section = tree.get(SWEEP_KEY)
        if section is None:
            continue
        per_method = section.get("methods", {}) if isinstance(section, dict) else None
        if not isinstance(per_method, dict) or any(not isinstance(v, dict) for v in per_method.values()):
            raise UsageError(f"recipe {name}: sweep: expected a mapping of config keys to grids [v1, v2] or ranges "
                             "'LOW:HIGH[:log]', with optional methods: {METHOD: {...}}")
        unknown = [m for m in per_method if m not in METHODS]
        if unknown:
            raise UsageError(f"recipe {name}: sweep.methods.{unknown[0]}: unknown method; valid: "
                             f"{', '.join(METHODS.names())}")
        common.update({k: v for k, v in section.items() if k != "methods"})
        own.update(per_method.get(method, {}))
    return {**common, **own}


def build_space(raw: dict[str, Any], check, fixed: Sequence[str]) -> tuple[Dimension, ...]:
    """Checked dimensions, sorted by key, from ``{key: [grid] or "LOW:HIGH[:log]"}``.

    Args:
        raw: the search space as written.
        check: ``check(key, value) -> Config``: resolves the trials' config with ``key`` set to ``value``;
            raises :class:`ConfigError` for an unknown key or a value of the wrong type.
        fixed: keys that the protocol or the user's ``--set`` fix, which cannot be swept.

    Raises:
        UsageError: an empty or repeated grid, a value that is not a scalar or that the config rejects, a
            range that is not ``LOW < HIGH`` (both > 0 for ``log``), a fixed key.
    """
    dims = []
    for key in sorted(raw):
        spec = raw[key]
        where = f"sweep {key}"
        if key in fixed:
            raise UsageError(f"{where}: {key} is fixed by --set or by the sweep protocol; leave it out of one of them")
        try:
            if isinstance(spec, list):
                dims.append(_grid_dimension(key, spec, check, where))
            elif isinstance(spec, str):
                dims.append(_range_dimension(key, spec, check, where))
            else:
                raise UsageError(f"{where}: {spec!r} is neither a grid [v1, v2, ...] nor a range 'LOW:HIGH[:log]'")
        except ConfigError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return tuple(dims)


def _grid_dimension(key: str, values: list[Any], check, where: str) -> Dimension:
    if not values:
        raise UsageError(f"{where}: the grid is empty; give at least one value, e.g. {key}=[0.001, 0.01]")
    for value in values:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise UsageError(f"{where}: {value!r} is not a number, string, boolean or null (grid values are scalars)")
        check(key, value)
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise UsageError(f"{where}: {repeated[0]!r} is in the grid twice")
    return Dimension(key, tuple(values))


def _range_dimension(key: str, text: str, check, where: str) -> Dimension:
    parts = text.split(":")
    log = parts[-1].strip() == "log"
    bounds = parts[:-1] if log else parts
    try:
        low, high = (_number(b) for b in bounds)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not LOW:HIGH or LOW:HIGH:log with numbers, e.g. 1e-4:1e-1:log"
                         ) from None
    if not low < high or (log and low <= 0):
        raise UsageError(f"{where}: {text!r} needs LOW < HIGH" + (" and LOW > 0 for :log" if log else ""))
    check(key, high)
    # the config decides: an integer key (method.prompt_len) takes integer bounds only, a float key widens them
    integer = isinstance(flatten(check(key, low).to_dict()).get(key), int)
    return Dimension(key, low=low, high=high, log=log, integer=integer)


def _number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


# --------------------------------------------------------------------------------------------------
# A planned sweep


@dataclass
class Sweep:
    """A sweep with everything resolved and checked; nothing opened or trained yet (see :func:`plan_sweep`).

    Attributes:
        out: the sweep folder.
        recipes: the loaded recipes, in order.
        recipe_names: where they came from, for messages and ``best.yaml``.
        overrides: the user's ``--set`` values (``method.name`` among them).
        space: the dimensions, sorted by key.
        sampler: ``grid`` or ``tpe``.
        trials: trials of a ``tpe`` study (``None`` for a grid: every point).
        prune: median pruning on the per-epoch validation accuracy.
        storage: an Optuna storage URL (``None``: the journal file in ``out``).
        study_name: the study's name in the storage.
        search_overrides: the dataset's search splits (VTAB-1k: ``data.vtab_protocol=tune``).
        final_overrides: the dataset's final run (VTAB-1k: ``data.vtab_protocol=final``); empty: none.
        base: the trials' config before the swept values.
    """

    out: Path
    recipes: list[dict[str, Any]]
    recipe_names: list[str]
    overrides: tuple[str, ...]
    space: tuple[Dimension, ...]
    sampler: str
    trials: int | None
    prune: bool
    storage: str | None
    study_name: str
    search_overrides: tuple[str, ...]
    final_overrides: tuple[str, ...]
    base: Config

    @property
    def size(self) -> int:
        """Trials of the whole study: every grid point, or ``trials``."""
        return math.prod(len(d.values) for d in self.space) if self.sampler == "grid" else int(self.trials)

    def param_overrides(self, params: dict[str, Any]) -> list[str]:
        return [format_override(key, params[key]) for key in sorted(params)]

    def trial_overrides(self, params: dict[str, Any]) -> list[str]:
        return [*self.overrides, *self.search_overrides, *TRIAL_OVERRIDES, *self.param_overrides(params)]

    def trial_config(self, params: dict[str, Any]) -> Config:
        return resolve_config(self.recipes, self.trial_overrides(params))

    def final_config(self, params: dict[str, Any]) -> Config:
        """The final run's config: the user's settings and the chosen values, on the dataset's final splits, with
        the values that follow from the data filled in (as its run folder stores them)."""
        return bind_requirements(
            resolve_config(self.recipes, [*self.overrides, *self.param_overrides(params), *self.final_overrides]))

    def identity(self) -> dict[str, Any]:
        """What an existing study must have been made with: the search space, the sampler and the settings
        (but where the files are and how fast they are read: workers on several machines may differ there)."""
        settings = {k: v for k, v in flatten(self.base.to_dict()).items() if k not in LOCATION_KEYS}
        return json.loads(json.dumps({"space": [d.to_json() for d in self.space], "sampler": self.sampler,
                                      "settings": settings}))

    def storage_label(self) -> str:
        return self.storage or str(self.out / JOURNAL)


def plan_sweep(recipes: Recipe | Sequence[Recipe] | None, overrides: Sequence[str], out: Path,
               grids: Sequence[str] = (), ranges: Sequence[str] = (), sampler: str = "grid",
               trials: int | None = None, prune: bool = False, storage: str | None = None,
               study: str | None = None) -> Sweep:
    """Resolve and check a sweep: recipes, ``--set``, the search space, the sampler. Nothing is written.

    The search space of the selected method: the recipes' ``sweep:`` sections < ``--grid`` < ``--range`` (key by
    key); if none of them names a key, :func:`default_space`.

    Raises:
        UsageError: a bad recipe, override, grid, range or sampler setting (one line naming it).
    """
    if sampler not in SAMPLERS:
        raise UsageError(f"--sampler: {sampler!r} is not valid; valid: {', '.join(SAMPLERS)}")
    names = [str(r) if not isinstance(r, dict) else "MAPPING" for r in recipe_list(recipes)]
    trees = [r if isinstance(r, dict) else load_recipe(r) for r in recipe_list(recipes)]
    overrides = tuple(overrides)
    # the user's settings alone: errors name their key first; a need the data does not meet stops here too
    chosen = bind_requirements(resolve_config(trees, overrides))
    dataset = DATASETS.get(chosen.data.name)
    raw = section_space(trees, chosen.method.name, names)
    raw.update(parse_grid(text) for text in grids)
    raw.update(parse_range(text) for text in ranges)
    if not raw:
        raw = default_space(chosen)
    fixed_sets = [*overrides, *dataset.search_overrides, *TRIAL_OVERRIDES]
    fixed = {".".join(parse_override(text)[0]) for text in fixed_sets}

    def check(key: str, value: Any) -> Config:
        return resolve_config(trees, [*fixed_sets, format_override(key, value)])

    space = build_space(raw, check, sorted(fixed))
    if sampler == "grid":
        ranged = [d.key for d in space if not d.is_grid]
        if ranged:
            raise UsageError(f"sweep {ranged[0]}: a range needs --sampler tpe with --trials N (the grid sampler "
                             "needs a list of values)")
        if trials is not None:
            raise UsageError("--trials: a grid runs every point once; --trials is for --sampler tpe")
    elif trials is None or trials < 1:
        raise UsageError("--sampler tpe needs --trials N (N >= 1): how many trials the study runs")
    return Sweep(Path(out), trees, names, overrides, space, sampler, trials, prune, storage,
                 study or Path(out).as_posix(), tuple(dataset.search_overrides), tuple(dataset.final_overrides),
                 resolve_config(trees, fixed_sets))


# --------------------------------------------------------------------------------------------------
# The study


def open_study(sweep: Sweep):
    """Create or load the sweep's study; an existing study must have the same space, sampler and settings.

    Raises:
        UsageError: the storage cannot be opened, or the study holds another search (nothing is changed).
    """
    import optuna

    storage = _storage(sweep)
    if sweep.sampler == "grid":
        # a fixed seed: every worker shuffles the grid the same way
        sampler = optuna.samplers.GridSampler({d.key: list(d.values) for d in sweep.space}, seed=0)
    else:
        sampler = optuna.samplers.TPESampler(seed=sweep.base.train.seed)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS) if sweep.prune
              else optuna.pruners.NopPruner())
    try:
        try:  # load first: an existing study's storage is only read until its search is known to be the same
            study = optuna.load_study(study_name=sweep.study_name, storage=storage, sampler=sampler, pruner=pruner)
        except KeyError:
            study = optuna.create_study(storage=storage, study_name=sweep.study_name, direction="maximize",
                                        sampler=sampler, pruner=pruner, load_if_exists=True)
    except Exception as exc:  # a database that refuses the connection fails here, in its driver's own way
        raise UsageError(f"--storage {sweep.storage_label()}: cannot open study {sweep.study_name!r} "
                         f"({first_sentence(exc)})") from None
    stored, wanted = study.user_attrs.get("identity"), sweep.identity()
    if stored is None:
        study.set_user_attr("identity", wanted)
    elif stored != wanted:
        raise UsageError(f"study {sweep.study_name!r} in {sweep.storage_label()} holds another search "
                         f"({_identity_difference(stored, wanted)}); rerun it with its own settings, or choose "
                         "another --out (or --study)")
    return study


def _storage(sweep: Sweep):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if sweep.storage is None:
        sweep.out.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(sweep.out / JOURNAL)))
    try:
        return optuna.storages.get_storage(sweep.storage)
    except Exception as exc:  # unknown dialects, missing drivers, unreachable servers: each its own exception
        raise UsageError(f"--storage {sweep.storage}: cannot open it ({first_sentence(exc)}); give an Optuna "
                         "storage URL such as sqlite:///sweep.db or postgresql://user@host/db") from None


def _identity_difference(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    if stored.get("space") != wanted["space"]:
        there = ", ".join(Dimension(**d).describe() for d in stored.get("space", []))
        here = ", ".join(Dimension(**d).describe() for d in wanted["space"])
        return f"search space {there} there, {here} now"
    if stored.get("sampler") != wanted["sampler"]:
        return f"sampler {stored.get('sampler')} there, {wanted['sampler']} now"
    return setting_differences(stored.get("settings", {}), wanted["settings"]) or "other settings"


# --------------------------------------------------------------------------------------------------
# Rows: one per run folder (an interrupted trial and its retries are one row)


@dataclass
class TrialRow:
    """One point of the sweep, as shown in ``sweep.md`` / ``sweep.csv``.

    Attributes:
        trial: the number of its first trial.
        run_dir: its run folder name under ``OUT/trials``.
        params: its values.
        state: ``complete``, ``pruned``, ``failed``, ``running``, ``waiting`` (a retry) or ``interrupted`` (not
            retried yet).
        val_acc: the best validation accuracy (so far, for a trial that did not complete).
        epoch: the epoch of ``val_acc``.
        seconds: wall time of its attempts (an attempt killed outright is not counted: its time is unknown).
        note: why it failed, where it was pruned, how often it was resumed.
    """

    trial: int
    run_dir: str
    params: dict[str, Any]
    state: str
    val_acc: float | None
    epoch: int | None
    seconds: float
    note: str = ""


STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def _retried(trials) -> set[int]:
    """Numbers of trials that were retried (each retry lists the attempts before it)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history", [])}


def trial_rows(study) -> list[TrialRow]:
    """The study's trials as rows, one per point (its last attempt), by trial number."""
    from datetime import datetime

    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    retried = _retried(trials)
    now = datetime.now()  # Optuna's trial times are naive local times
    rows = []
    for t in trials:
        if t.number in retried:
            continue
        attempts = [by_number[n] for n in t.system_attrs.get("retry_history", []) if n in by_number] + [t]
        seconds = sum(a.user_attrs.get("seconds", 0.0) for a in attempts)
        if t.state.name == "RUNNING" and t.datetime_start is not None:
            seconds += (now - t.datetime_start).total_seconds()
        state = STATES[t.state.name]
        if state == "failed" and t.user_attrs.get("interrupted"):
            state = "interrupted"  # retried by the next worker or run
        steps = t.intermediate_values
        if state == "complete":
            val, epoch = t.value, t.user_attrs.get("best_epoch")
        elif steps:
            # ties keep the earlier epoch, as in training
            epoch = min(steps, key=lambda s: (-steps[s], s))
            val = steps[epoch]
        else:
            val, epoch = None, None
        notes = []
        if state == "pruned":
            notes.append(f"pruned after epoch {max(steps)}" if steps else "pruned")
        if t.user_attrs.get("error"):
            notes.append(t.user_attrs["error"])
        if len(attempts) > 1:
            notes.append(f"resumed after {len(attempts) - 1} interruption{'s' if len(attempts) > 2 else ''}")
        params = t.params or next((a.params for a in attempts if a.params), {})
        rows.append(TrialRow(attempts[0].number, t.user_attrs.get("run_dir", f"trial-{attempts[0].number:04d}"),
                             params, state, val, epoch, seconds, "; ".join(notes)))
    return sorted(rows, key=lambda r: r.trial)


def select_best(rows: Sequence[TrialRow]) -> TrialRow | None:
    """The complete row of highest validation accuracy; ties: the earlier best epoch, then the earlier trial."""
    complete = [r for r in rows if r.state == "complete"]
    return min(complete, key=lambda r: (-r.val_acc, r.epoch, r.trial)) if complete else None


def ties(rows: Sequence[TrialRow], best: TrialRow | None) -> list[TrialRow]:
    """The other complete rows with the best row's validation accuracy."""
    if best is None:
        return []
    return [r for r in rows if r.state == "complete" and r is not best and r.val_acc == best.val_acc]


# --------------------------------------------------------------------------------------------------
# Running


@dataclass
class SweepResult:
    """What a sweep has so far.

    Attributes:
        sweep: the sweep.
        rows: one per point.
        complete: no point is left and none is running: the study is finished.
        best: the selected row (``None`` until a trial completes).
        best_test_acc: test accuracy of the selected trial's ``best.pt`` (once the study is complete).
        final: the final run's summary (datasets with a final run, once the study is complete).
        files: the files written.
    """

    sweep: Sweep
    rows: list[TrialRow]
    complete: bool
    best: TrialRow | None = None
    best_test_acc: float | None = None
    final: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def test_acc(self) -> float | None:
        """The result: the final run's test accuracy where the dataset has one, else the selected trial's."""
        if self.final is not None:
            return self.final["test_acc"]
        return self.best_test_acc

    def counts(self) -> dict[str, int]:
        return {state: sum(r.state == state for r in self.rows) for state in (*STATES.values(), "interrupted")}


def run_sweep(sweep: Sweep, console=None) -> SweepResult:
    """Take part in ``sweep`` until no point is left; then, if no trial is running elsewhere, finish it.

    Finished trials are never run again; an interrupted one resumes from its run folder. Once the study is
    complete the selected trial is evaluated on the test split (once: the result is kept in ``sweep.json``) and
    the dataset's final run is trained (or reused). The tables, ``best.yaml`` and the plot are written in any case.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # this module reports trials itself
    study = open_study(sweep)
    locks = sweep.out / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    own = FileLock(locks / f"worker-{worker}.lock")
    own.acquire()
    try:
        shared = FileLock(locks / "sweep.lock")
        while True:
            shared.acquire()
            try:
                _recover(study, locks)
                if not _has_work(study, sweep):
                    break
                objective = _Objective(sweep, study, worker, shared, console)
                study.optimize(objective, n_trials=1, catch=(RuntimeError,), gc_after_trial=True)
            finally:
                shared.release()
    finally:
        own.release()
        Path(own.lock_file).unlink(missing_ok=True)
    return finish(sweep, study, console)


def _has_work(study, sweep: Sweep) -> bool:
    """A retry is waiting, or a point was never started."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return True
    if sweep.sampler == "grid":
        # the grid sampler records each trial's point as its grid id, retries keep theirs
        return len({t.system_attrs["grid_id"] for t in trials if "grid_id" in t.system_attrs}) < sweep.size
    retried = _retried(trials)
    return sum(t.number not in retried for t in trials) < sweep.size


def _recover(study, locks: Path) -> None:
    """Retry every interrupted trial once (called with the sweep lock held).

    Workers claim trials and store their ends while holding the sweep lock, which the caller holds now: a
    RUNNING trial is training, or its worker died. It died when its lock file is free (or gone), or when the
    trial names no worker (its worker died while claiming it). A FAILED trial is interrupted when its objective
    said so (Ctrl-C, an error that is not the trial's own). Optuna's ``RetryHeartbeatStaleTrialCallback`` enqueues the
    retry with the trial's point (its grid id, or its parameters) and user attributes (its run folder).
    """
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    with warnings.catch_warnings():  # "experimental" since Optuna 2.8, under this name since 4.9
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback()
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    dead: dict[str, bool] = {}
    for t in trials:
        if t.number in retried:
            continue
        if t.state == TrialState.RUNNING:
            owner = t.user_attrs.get("worker")
            if owner is not None:
                if owner not in dead:
                    dead[owner] = _worker_is_dead(locks / f"worker-{owner}.lock")
                if not dead[owner]:
                    continue
            # the grid sampler stops the study when its last point finishes, which raises outside of
            # study.optimize; the trial's state is stored before that (optuna/optuna#4121)
            with contextlib.suppress(RuntimeError):
                study.tell(t.number, state=TrialState.FAIL)
        elif not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")):
            continue
        retry(study, t)
    for owner, is_dead in dead.items():
        if is_dead:
            (locks / f"worker-{owner}.lock").unlink(missing_ok=True)


def _worker_is_dead(path: Path) -> bool:
    """A worker holds its lock file while it lives; the operating system frees it when the process dies."""
    if not path.is_file():
        return True
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return False
    lock.release()
    return True


class _Objective:
    """One trial: claim it (worker, run folder, values) under the sweep lock, then train it without that lock."""

    def __init__(self, sweep: Sweep, study, worker: str, shared: FileLock, console):
        self.sweep, self.study, self.worker, self.shared, self.console = sweep, study, worker, shared, console
        self.rows = trial_rows(study)  # the state before this trial, for the progress line

    def __call__(self, trial) -> float:
        import optuna

        trial.set_user_attr("worker", self.worker)
        for key, value in (("interrupted", False), ("seconds", 0.0)):  # a retry inherits its attempts' attributes
            trial.set_user_attr(key, value)
        frozen = self.study.get_trials(deepcopy=False)[trial.number]
        first = (frozen.system_attrs.get("retry_history") or [trial.number])[0]
        run_name = trial.user_attrs.get("run_dir") or f"trial-{first:04d}"
        trial.set_user_attr("run_dir", run_name)
        params = {d.key: d.suggest(trial) for d in self.sweep.space}
        # the trial is claimed: other workers may claim the next one while this one trains. The lock is taken
        # again before the trial's end is stored, so a worker that holds it sees no trial end under its feet.
        self.shared.release()
        start = time.monotonic()
        try:
            _progress_line(self.console, self.sweep, self.rows, first, params, resumed=first != trial.number)
            summary = self._train(trial, params, self.sweep.out / TRIALS / run_name)
            trial.set_user_attr("best_epoch", summary["best_epoch"])
            return summary["val_acc"]
        except optuna.TrialPruned as exc:
            self._say(f"trial {first} {exc}")
            raise
        except RuntimeError as exc:  # diverged, out of memory: this trial failed, the sweep goes on
            error = str(exc).splitlines()[0][:200]
            trial.set_user_attr("error", error)
            self._say(f"trial {first} failed: {error}")
            raise
        except BaseException:  # Ctrl-C, a missing data folder: not the trial's fault, retried later
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            trial.set_user_attr("seconds", time.monotonic() - start)
            self.shared.acquire()

    def _say(self, line: str) -> None:
        from rich.console import Console

        (self.console or Console(stderr=True)).print(line, highlight=False, markup=False, soft_wrap=True)

    def _train(self, trial, params: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        import optuna

        if (run_dir / SUMMARY).is_file():  # finished just before its worker was killed
            return json.loads((run_dir / SUMMARY).read_text())
        for row in read_metrics(run_dir):  # a retry: what its earlier attempts saw
            if "val_acc" in row:
                trial.report(row["val_acc"], row["epoch"])

        def on_epoch(row: dict[str, Any]) -> None:
            if "val_acc" in row:
                trial.report(row["val_acc"], row["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

        return fit(self.sweep.trial_config(params), run_dir, console=self.console, on_epoch=on_epoch,
                   final_test=False)


def _progress_line(console, sweep: Sweep, rows: list[TrialRow], number: int, params: dict[str, Any],
                   resumed: bool) -> None:
    """A bar over the trials and where the sweep stands, above the trial's own training progress."""
    from rich.console import Console
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    console = console or Console(stderr=True)
    done = sum(r.state in ("complete", "pruned", "failed") for r in rows)
    best = select_best(rows)
    status = [f"{done}/{sweep.size} done"]
    status += [f"{n} {state}" for state in ("pruned", "failed") if (n := sum(r.state == state for r in rows))]
    if best is not None:
        status.append(f"best val {best.val_acc:.2f} (trial {best.trial})")
    line = Table.grid(padding=(0, 2))
    line.add_row(f"[bold]trial {number}[/]" + (" (resumed)" if resumed else ""),
                 " ".join(format_override(k, v) for k, v in sorted(params.items())),
                 ProgressBar(total=sweep.size, completed=done, width=20), " · ".join(status))
    console.rule(style="dim")
    console.print(line)


# --------------------------------------------------------------------------------------------------
# Finishing: selection, test evaluation, final run, files


def finish(sweep: Sweep, study, console=None) -> SweepResult:
    """Rows and files; with the study complete, also the selected trial's test accuracy and the final run.

    Several workers may finish at once: the final lock lets one evaluate and train while the others wait and
    then reuse its results (``sweep.json``, ``OUT/final/summary.json``).
    """
    from optuna.trial import TrialState

    rows = trial_rows(study)
    complete = not _has_work(study, sweep) and not any(  # _has_work counts the waiting retries
        t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))
    result = SweepResult(sweep, rows, complete, select_best(rows))
    if complete and result.best is not None:
        with FileLock(sweep.out / "locks" / "final.lock"):
            result.best_test_acc = _best_test_acc(sweep, result.best)
            if sweep.final_overrides:
                result.final = _final_run(sweep, result.best, console)
            write_files(result)
    else:
        write_files(result)
    return result


def _best_test_acc(sweep: Sweep, best: TrialRow) -> float:
    """The selected trial's ``best.pt`` on the test split: evaluated once, then read from ``sweep.json``."""
    kept = read_result(sweep.out)
    if kept is not None and kept.get("best", {}).get("run_dir") == best.run_dir and "test_acc" in kept["best"]:
        return kept["best"]["test_acc"]
    return evaluate_checkpoint(sweep.out / TRIALS / best.run_dir / "best.pt", "test")["acc"]


def _final_run(sweep: Sweep, best: TrialRow, console) -> dict[str, Any]:
    cfg = sweep.final_config(best.params)
    run_dir = sweep.out / FINAL
    if is_run(run_dir):
        differences = setting_differences(flatten(load_run_config(run_dir).to_dict()), flatten(cfg.to_dict()))
        if differences:
            raise UsageError(f"{run_dir} holds a final run of other values ({differences}); the selection changed: "
                             "move that folder away and rerun")
    return run_or_reuse(cfg, run_dir, console)


def read_result(out: Path) -> dict[str, Any] | None:
    """``OUT/sweep.json`` (``None`` when absent or unreadable)."""
    try:
        return json.loads((out / RESULT).read_text())
    except (OSError, ValueError):
        return None


def finished_test_acc(out: Path) -> float | None:
    """The test accuracy of a finished sweep in ``out`` (its selected trial's, or its final run's); else ``None``."""
    result = read_result(out)
    if result is None or not result.get("complete") or result.get("test_acc") is None:
        return None
    return float(result["test_acc"])


def best_recipe(sweep: Sweep, best: TrialRow) -> dict[str, Any]:
    """The selected trial as a recipe delta: ``--recipe R... --recipe best.yaml`` resolves to its config.

    It holds every key whose value differs from the recipes', plus the method and the swept keys always.
    """
    trial = flatten(sweep.trial_config(best.params).to_dict())
    base = flatten(resolve_config(sweep.recipes, [f"method.name={trial['method.name']}"]).to_dict())
    always = {"method.name", *best.params}
    delta: dict[str, Any] = {}
    for key, value in trial.items():
        if key in always or base.get(key) != value:
            node = delta
            *groups, last = key.split(".")
            for group in groups:
                node = node.setdefault(group, {})
            node[last] = value
    return delta


HEADERS = ("trial", "best val acc", "epoch", "state", "time (s)", "note")


def table_rows(result: SweepResult, raw: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the sweep's table: the values as written (``raw``: as numbers, for CSV)."""
    keys = [d.key for d in result.sweep.space]
    headers = [HEADERS[0], *keys, *HEADERS[1:]]
    rows = [[r.trial, *((r.params.get(k, "") if raw else short_value(r.params.get(k, ""))) for k in keys),
             "" if r.val_acc is None else r.val_acc, "" if r.epoch is None else r.epoch, r.state,
             round(r.seconds), r.note]
            for r in result.rows]
    return headers, rows


def summary_lines(result: SweepResult) -> list[str]:
    """The sweep in a few lines: study, space, counts, selection, test accuracy, final run, how to reproduce."""
    sweep, best = result.sweep, result.best
    counts = result.counts()
    sampler = f"grid, {sweep.size} points" if sweep.sampler == "grid" else f"TPE, {sweep.size} trials"
    lines = [
        f"study {sweep.study_name!r} in {sweep.storage_label()} ({sampler}; pruning: "
        f"{'median' if sweep.prune else 'off'})",
        f"search space: {'; '.join(d.describe() for d in sweep.space)}",
        f"trials: {', '.join(f'{n} {state}' for state, n in counts.items() if n)}"
        + ("" if result.complete else " (not finished)"),
    ]
    if best is None:
        lines.append("selected: none (no trial has completed)")
        return lines
    values = ", ".join(format_override(k, v) for k, v in sorted(best.params.items()))
    line = f"selected: trial {best.trial} ({values}): best val acc {best.val_acc:.2f} at epoch {best.epoch}"
    if result.best_test_acc is not None:
        line += f"; test acc {result.best_test_acc:.2f} at that epoch"
    lines.append(line)
    tied = ties(result.rows, best)
    if tied:
        lines.append(f"ties: trial {', '.join(str(r.trial) for r in tied)} also reached {best.val_acc:.2f}; the "
                     "earlier best epoch, then the earlier trial, is selected")
    if result.final is not None:
        lines.append(f"final run ({', '.join(sweep.final_overrides)}): test acc {result.final['test_acc']:.2f} "
                     f"({sweep.out / FINAL})")
    lines.append(f"train the selected trial again: {_train_command(sweep, str(sweep.out / 'best.yaml'))}")
    return lines


def _train_command(sweep: Sweep, best_yaml: str) -> str:
    return " ".join(["insvp train", *(f"--recipe {name}" for name in sweep.recipe_names), f"--recipe {best_yaml}"])


def write_files(result: SweepResult) -> None:
    """``sweep.md``, ``sweep.csv``, ``sweep.json``, ``sweep.png`` and (once a trial completed) ``best.yaml``."""
    from .figures.sweep_plot import sweep_plot

    sweep, out = result.sweep, result.sweep.out
    headers, rows = table_rows(result)
    title = f"# Sweep: {sweep.base.method.name} on {sweep.base.data.name} ({out})\n\n"
    notes = "".join(f"- {line}\n" for line in summary_lines(result))
    atomic_write_text(title + notes + "\n" + markdown_table(headers, rows, digits=2), out / "sweep.md")
    atomic_write_text(csv_table(*table_rows(result, raw=True)), out / "sweep.csv")
    files = [out / "sweep.md", out / "sweep.csv"]
    best = result.best
    if best is not None:
        comment = (f"# insvp sweep {out}: trial {best.trial}, best val acc {best.val_acc:.2f} at epoch {best.epoch}\n"
                   f"# {_train_command(sweep, 'THIS_FILE')} trains it again\n")
        if sweep.final_overrides:
            comment += f"# the final run adds: {' '.join(f'--set {o}' for o in sweep.final_overrides)}\n"
        atomic_write_text(comment + yaml.safe_dump(best_recipe(sweep, best), sort_keys=False), out / "best.yaml")
        files.append(out / "best.yaml")
    record = {
        "study": sweep.study_name, "storage": sweep.storage_label(), "sampler": sweep.sampler,
        "space": [d.to_json() for d in sweep.space], "complete": result.complete,
        "method": sweep.base.method.name, "dataset": sweep.base.data.name,
        "best": None if best is None else {
            "trial": best.trial, "run_dir": best.run_dir, "params": best.params, "val_acc": best.val_acc,
            "epoch": best.epoch, **({"test_acc": result.best_test_acc} if result.best_test_acc is not None else {})},
        "final": result.final, "test_acc": result.test_acc,
        "rows": [vars(r) for r in result.rows],
    }
    atomic_write_text(json.dumps(record, indent=2) + "\n", out / RESULT)
    files.append(out / RESULT)
    if any(r.val_acc is not None for r in result.rows):
        files.append(sweep_plot(result, out / "sweep.png"))
    result.files = files
