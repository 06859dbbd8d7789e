"""`insvp sweep`: the search space, the protocol (no test split in trials), workers sharing one study, resuming
after a kill, failed and pruned trials, best.yaml, the final run of VTAB-1k, and `compare --sweep` / `reproduce
--tune` / `report`. Tiny random-init ViTs on scikit-learn's digits, a few epochs: each sweep takes seconds."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import yaml
from fabricate import make_vtab
from rich.console import Console
from typer.testing import CliRunner

import insvp_cli.experiments.sweep.plan as sweep_plan
import insvp_cli.experiments.sweep.study as sweep_study
import insvp_cli.train.loop as training
from insvp_cli.cli import app
from insvp_cli.cli.app import run as run_cli
from insvp_cli.common.errors import UsageError
from insvp_cli.experiments.reproduce.report import build_report
from insvp_cli.experiments.reproduce.runner import plan_table
from insvp_cli.experiments.reproduce.tables import Cell, RunSpec, TableDef, register_table
from insvp_cli.experiments.reproduce.tune import tune_dry_run_lines, tune_plan
from insvp_cli.experiments.sweep.outputs import read_result
from insvp_cli.experiments.sweep.plan import JOURNAL, plan_sweep
from insvp_cli.experiments.sweep.rows import TrialRow, select_best, ties
from insvp_cli.experiments.sweep.space import default_space
from insvp_cli.experiments.sweep.study import run_sweep
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.folder import RunFolder
from insvp_cli.use.evaluate import evaluate_checkpoint
from tests.conftest import INSVP, REPO, one_line_error, tiny_overrides, tiny_run

QUIET = Console(file=io.StringIO())
runner = CliRunner()

# a tiny run on two digits whose learning rate is left to the sweep
SWEPT = {"classes": "[0, 1]", "lr": None}


def as_args(sets: list[str]) -> list[str]:
    return [x for s in sets for x in ("--set", s)]


def table(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((out / "sweep.csv").open()))


def outcome(rows: list[dict[str, str]]) -> list[tuple]:
    """What must not depend on how the sweep ran: each point's values, accuracy, epoch and state."""
    return sorted((r["train.lr"], r["best val acc"], r["epoch"], r["state"]) for r in rows)


def journal_trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(out / JOURNAL)))
    return optuna.load_study(study_name=out.as_posix(), storage=storage).get_trials()


def installed(*args: str, **kw) -> subprocess.CompletedProcess:
    """The installed ``insvp`` script in a subprocess, as a user runs it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(INSVP), *args], capture_output=True, text=True, env=env, cwd=REPO, **kw)


LRS = "train.lr=[0.001, 0.003, 0.01, 0.03]"

# --------------------------------------------------------------------------------------------------
# Acceptance: workers and interruptions


def test_two_worker_processes_run_each_point_of_a_grid_once(tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", *as_args(tiny_run("linear", 2, **SWEPT)), "--grid", LRS, "--out", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([str(INSVP), *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    trials = journal_trials(out)
    assert sorted(t.params["train.lr"] for t in trials) == [0.001, 0.003, 0.01, 0.03]  # each point once
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes took points
    assert sorted(p.name for p in (out / "trials").iterdir()) == [f"trial-000{i}" for i in range(4)]
    for run in (out / "trials").iterdir():  # every point trained once: two epochs in its metrics
        assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert read_result(out)["complete"] and read_result(out)["best"]["test_acc"] is not None


def test_killed_sweep_resumes_and_ends_as_the_uninterrupted_one(tmp_path):
    sets = tiny_run("linear", 2, **SWEPT)
    reference = run_sweep(plan_sweep(None, sets, tmp_path / "reference", grids=[LRS]), QUIET)
    out = tmp_path / "killed"
    args = ["sweep", *as_args(sets), "--grid", LRS, "--out", str(out)]
    proc = subprocess.Popen([str(INSVP), *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "trials" / "trial-0001" / "resume.pt").exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # in trial 1, after its first epoch
    proc.wait()
    first = out / "trials" / "trial-0000"
    assert (first / "summary.json").is_file() and not (out / "sweep.json").exists()
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}

    rerun = installed(*args)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == mtimes  # the finished trial is not rerun
    rows = table(out)
    assert outcome(rows) == outcome(table(reference.sweep.out))
    assert read_result(out)["best"]["test_acc"] == reference.best_test_acc
    resumed = [r for r in rows if r["note"]]
    assert [r["trial"] for r in resumed] == ["1"] and "resumed after 1 interruption" in resumed[0]["note"]
    # the interrupted trial continued in its own folder: each epoch once, as in the uninterrupted sweep
    killed_metrics = (out / "trials" / "trial-0001" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in killed_metrics] == [1, 2]
    assert len(journal_trials(out)) == 5  # four points and one retry


# --------------------------------------------------------------------------------------------------
# The protocol, in process


def test_trials_never_see_the_test_split_and_the_choice_is_tested_once(tmp_path, monkeypatch):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"sweep": {"train.lr": [0.003, 0.03]}}))
    sets = [*tiny_run("linear", 2, **SWEPT), "train.test_every_epoch=true"]  # the sweep turns it off in trials
    result = run_sweep(plan_sweep([recipe], sets, tmp_path / "s"), QUIET)
    out = result.sweep.out
    for run in (out / "trials").iterdir():
        summary = json.loads((run / "summary.json").read_text())
        assert "test_acc" not in summary and "release_protocol_best_test_acc" not in summary
        assert not any("test_acc" in json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines())
        assert yaml.safe_load((run / "config.yaml").read_text())["train"]["test_every_epoch"] is False
    best = result.best
    assert best is not None and result.complete and result.final is None
    assert result.best_test_acc == evaluate_checkpoint(out / "trials" / best.run_dir / "best.pt")["acc"]
    assert {p.name for p in out.iterdir()} >= {"sweep.md", "sweep.csv", "sweep.json", "sweep.png", "best.yaml",
                                                JOURNAL, "trials"}
    assert "selected: trial" in (out / "sweep.md").read_text()

    # best.yaml on top of the recipe trains the selected trial again, to the same numbers
    trial_config = RunFolder(out / "trials" / best.run_dir).read_config()
    assert resolve_config([recipe, out / "best.yaml"]) == trial_config
    again = runner.invoke(app, ["train", "--recipe", str(recipe), "--recipe", str(out / "best.yaml"),
                                "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    summary = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert (summary["val_acc"], summary["best_epoch"]) == (best.val_acc, best.epoch)

    # a finished sweep trains and tests nothing again
    def refuse(*args, **kwargs):
        raise AssertionError("called again")

    monkeypatch.setattr(training, "fit", refuse)
    monkeypatch.setattr(sweep_study, "evaluate_checkpoint", refuse)
    assert run_sweep(plan_sweep([recipe], sets, out), QUIET).best_test_acc == result.best_test_acc


def test_a_diverged_trial_is_shown_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = training.build_criterion

    def poisoned(cfg, mixup):  # the loss of the lr=0.03 trial becomes NaN
        inner = real(cfg, mixup)
        return lambda logits, targets: inner(logits, targets) * (float("nan") if cfg.lr == 0.03 else 1.0)

    monkeypatch.setattr(training, "build_criterion", poisoned)
    sets = tiny_run("linear", 1, **SWEPT)
    result = run_sweep(plan_sweep(None, sets, tmp_path / "s", grids=["train.lr=[0.003, 0.03]"]), QUIET)
    states = {r.params["train.lr"]: r for r in result.rows}
    assert states[0.03].state == "failed" and "the loss became nan" in states[0.03].note
    assert states[0.003].state == "complete" and result.best is states[0.003] and result.complete
    assert "1 failed" in (result.sweep.out / "sweep.md").read_text()


def test_pruned_trials_keep_their_folders_and_are_never_selected(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_study, "PRUNE_STARTUP_TRIALS", 1)
    # trials 2 and 3 fall below the median at epoch 1
    sets = [*tiny_run("linear", 3, **SWEPT), "data.classes=[0, 1, 2]"]
    result = run_sweep(plan_sweep(None, sets, tmp_path / "s", grids=[LRS], prune=True), QUIET)
    pruned = [r for r in result.rows if r.state == "pruned"]
    assert pruned and result.complete and result.best.state == "complete"
    for row in pruned:
        run = result.sweep.out / "trials" / row.run_dir
        epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert row.note == f"pruned after epoch {epochs[-1]}" and epochs[-1] < 3
        assert (run / "best.pt").is_file() and not (run / "summary.json").exists()


def test_vtab_searches_on_train800_then_trains_the_final_run(tmp_path):
    make_vtab(tmp_path / "dtd", classes=3)
    sets = [*tiny_overrides("p8_d48_32px", "linear"), "data.name=vtab", f"data.root={tmp_path / 'dtd'}",
            "data.num_workers=0", "data.batch_size=4", "train.epochs=1", "train.device=cpu",
            "data.vtab_protocol=final"]  # the search runs on the tune splits whatever the recipe says
    result = run_sweep(plan_sweep(None, sets, tmp_path / "s", grids=["train.lr=[0.003, 0.03]"]), QUIET)
    out = result.sweep.out
    for run in (out / "trials").iterdir():
        assert yaml.safe_load((run / "config.yaml").read_text())["data"]["vtab_protocol"] == "tune"
    final = yaml.safe_load((out / "final" / "config.yaml").read_text())
    assert final["data"]["vtab_protocol"] == "final" and final["train"]["lr"] == result.best.params["train.lr"]
    assert result.final["test_acc"] == result.test_acc == read_result(out)["test_acc"]
    assert "final run (data.vtab_protocol=final)" in (out / "sweep.md").read_text()


def test_tpe_samples_a_range(tmp_path):
    result = run_sweep(plan_sweep(None, tiny_run("linear", 1, **SWEPT), tmp_path / "s",
                                  ranges=["train.lr=1e-3:1e-1:log"],
                                  sampler="tpe", trials=2), QUIET)
    assert [r.state for r in result.rows] == ["complete", "complete"]
    assert all(1e-3 <= r.params["train.lr"] <= 1e-1 for r in result.rows)


def test_a_database_storage_holds_the_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = run_sweep(plan_sweep(None, tiny_run("linear", 1, **SWEPT), tmp_path / "s",
                                  grids=["train.lr=[0.003, 0.03]"],
                                  storage=url, study="digits-linear"), QUIET)
    assert result.complete and not (tmp_path / "s" / JOURNAL).exists()
    trials = optuna.load_study(study_name="digits-linear", storage=url).get_trials()
    assert sorted(t.params["train.lr"] for t in trials) == [0.003, 0.03]
    assert read_result(tmp_path / "s")["storage"] == url


def test_selection_prefers_the_cheaper_then_the_earlier_trial():
    rows = [TrialRow(0, "a", {}, "complete", 90.0, 5, 1.0), TrialRow(1, "b", {}, "complete", 90.0, 3, 1.0),
            TrialRow(2, "c", {}, "complete", 90.0, 3, 1.0), TrialRow(3, "d", {}, "pruned", 95.0, 1, 1.0),
            TrialRow(4, "e", {}, "failed", None, None, 1.0)]
    best = select_best(rows)
    assert best.trial == 1 and [r.trial for r in ties(rows, best)] == [0, 2]
    assert select_best(rows[3:]) is None


# --------------------------------------------------------------------------------------------------
# The search space


def test_default_grids():
    def space(method: str, *sets: str) -> dict:
        return default_space(resolve_config(None, [f"method.name={method}", "data.batch_size=64", *sets]))

    assert space("full") == {"train.lr": [2.5e-05, 0.000125, 0.00025, 0.00125],
                             "train.weight_decay": [0.0, 0.0001, 0.001, 0.01]}
    assert space("vpt")["train.lr"] == [0.0005, 0.001, 0.002, 0.005]
    # under its published protocol a method searches its authors' grid: VPT's prompt lrs scaled to the batch
    assert space("vpt", "method.protocol=published")["train.lr"][:3] == [12.5, 6.25, 2.5]
    assert space("ilmvp", "method.protocol=published") == {"train.lr": [0.01], "train.weight_decay": [0.0]}
    plan = plan_sweep(None, tiny_run("vpt", **SWEPT), Path("unused"))
    assert [d.key for d in plan.space] == ["train.lr", "train.weight_decay"] and plan.size == 16


def test_the_quickstart_recipe_searches_three_learning_rates_per_method(tmp_path):
    recipe = REPO / "recipes" / "quickstart.yaml"
    for method in ("linear", "vpt", "adaptformer", "insvp", "full"):
        plan = plan_sweep([recipe], [f"method.name={method}"], tmp_path / method)
        assert [d.key for d in plan.space] == ["train.lr"] and plan.size == 3
        assert 0.02 in plan.space[0].values or method == "full"
    assert resolve_config(recipe) == resolve_config({k: v for k, v in yaml.safe_load(recipe.read_text()).items()
                                                     if k != "sweep"})  # runs never see the sweep section


def test_space_sources_stack_key_by_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"sweep": {"train.lr": [0.1, 0.2], "train.weight_decay": [0.0, 0.1],
                                                "methods": {"full": {"train.lr": [0.001]}}}}))
    linear = plan_sweep([recipe], tiny_run("linear", **SWEPT), tmp_path / "a", grids=["train.weight_decay=[0.5]"])
    assert [d.describe() for d in linear.space] == ["train.lr=[0.1, 0.2]", "train.weight_decay=[0.5]"]
    full = plan_sweep([recipe], tiny_run("full", **SWEPT), tmp_path / "b")
    assert [d.describe() for d in full.space] == ["train.lr=[0.001]", "train.weight_decay=[0, 0.1]"]
    insvp = [s for s in tiny_run("insvp", **SWEPT) if not s.startswith("method.prompt_len")]
    ranged = plan_sweep(None, insvp, tmp_path / "c", ranges=["method.prompt_len=1:4"], sampler="tpe", trials=3)
    assert ranged.space[0].integer and (ranged.space[0].low, ranged.space[0].high) == (1, 4)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "train.lrr=[0.1]"], "sweep train.lrr: unknown key train.lrr"),
        (["--grid", "train.lr=[fast, slow]"], "sweep train.lr: train.lr: 'fast' is not a number"),
        (["--grid", "train.lr=[]"], "sweep train.lr: the grid is empty"),
        (["--grid", "train.lr=0.1"], "expected KEY=[v1, v2, ...]"),
        (["--range", "train.lr=1e-3:1e-1"], "a range needs --sampler tpe"),
        (["--set", "train.lr=0.1", "--grid", "train.lr=[0.1]"], "train.lr is fixed by --set"),
        (["--storage", "sqlite:////absent-folder/x/sweep.db"], "--storage sqlite:////absent-folder/x/sweep.db: cannot"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, extra, message, capsys):
    code = run_cli(["sweep", *as_args(tiny_run("linear", 1, **SWEPT)), *extra, "--out", str(tmp_path / "s")])
    one_line_error(capsys.readouterr().err, code, 2, message)


def test_another_search_on_an_existing_study_is_refused_and_nothing_is_lost(tmp_path, capsys):
    out = tmp_path / "s"
    run_sweep(plan_sweep(None, tiny_run("linear", 1, **SWEPT), out, grids=["train.lr=[0.01]"]), QUIET)
    journal = (out / JOURNAL).read_bytes()
    proc = installed("sweep", *as_args(tiny_run("linear", 1, **SWEPT)), "--grid", "train.lr=[0.02]", "--out", str(out))
    one_line_error(proc.stderr, proc.returncode, 2, "search space train.lr=[0.01] there, train.lr=[0.02] now")
    capsys.readouterr()
    code = run_cli(["sweep", *as_args(tiny_run("linear", 1, **SWEPT)),
                    "--grid", "train.lr=[0.01]", "--set", "train.epochs=2",
                "--out", str(out)])
    one_line_error(capsys.readouterr().err, code, 2, "train.epochs: 1 there, 2 now")
    assert (out / JOURNAL).read_bytes() == journal


def test_plan_errors_name_the_problem(tmp_path):
    with pytest.raises(UsageError, match="--sampler tpe needs --trials N"):
        plan_sweep(None, tiny_run("linear", **SWEPT), tmp_path, ranges=["train.lr=1e-3:1e-1"], sampler="tpe")
    with pytest.raises(UsageError, match="needs LOW < HIGH and LOW > 0 for :log"):
        plan_sweep(None, tiny_run("linear", **SWEPT), tmp_path, ranges=["train.lr=0:1:log"], sampler="tpe", trials=2)
    with pytest.raises(UsageError, match="method.prompt_len: 2.5 is not of type int"):
        plan_sweep(None, [s for s in tiny_run("insvp", **SWEPT) if "prompt_len" not in s], tmp_path,
                   ranges=["method.prompt_len=1:2.5"], sampler="tpe", trials=2)
    with pytest.raises(UsageError, match="train.test_every_epoch is fixed"):
        plan_sweep(None, tiny_run("linear", **SWEPT), tmp_path, grids=["train.test_every_epoch=[true, false]"])


# --------------------------------------------------------------------------------------------------
# Comparisons at each method's best


def test_compare_sweep_compares_each_method_at_its_best(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"sweep": {"train.lr": [0.003, 0.03], "methods": {"vpt": {"train.lr": [0.01]}}}}))
    args = ["compare", "--recipe", str(recipe), "--methods", "linear,vpt", "--sweep", "--out", str(tmp_path / "c"),
            *as_args(tiny_run("linear", 1, **SWEPT)[1:])]  # tiny_run("linear", **SWEPT) starts with method.name
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "c" / "comparison.csv").open()))
    assert [r["method"] for r in rows] == ["linear", "vpt"]
    assert rows[1]["chosen values"] == "lr=0.01" and rows[1]["trials"] == "1/1" and rows[0]["trials"] == "2/2"
    for row in rows:
        kept = read_result(tmp_path / "c" / row["method"])
        assert float(row["test acc"]) == kept["test_acc"] and float(row["val acc"]) == kept["best"]["val_acc"]
    best = tmp_path / "c" / "linear" / "trials" / read_result(tmp_path / "c" / "linear")["best"]["run_dir"] / "best.pt"
    mtime = best.stat().st_mtime_ns
    assert runner.invoke(app, args).exit_code == 0 and best.stat().st_mtime_ns == mtime  # reused


TUNE_TABLE = register_table(TableDef(
    "tune-test", "tune test table", "method", ("Linear",), ("0-2",),
    (Cell("Linear", "0-2", "linear", RunSpec("digits012/linear", None, tuple(tiny_run("linear", 1, **SWEPT)))),),
))


def test_reproduce_tune_sweeps_each_run_and_report_marks_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_plan, "default_space", lambda cfg: {"train.lr": [0.003, 0.03]})
    plan = plan_table(TUNE_TABLE, tmp_path, tmp_path / "runs")
    lines = tune_dry_run_lines(plan)
    assert lines[-1].startswith("insvp sweep --set method.name=linear") and "digits012/linear-tuned" in lines[-1]
    outcome = tune_plan(plan, QUIET)
    assert outcome.trained == ["digits012/linear"] and not outcome.failed
    kept = read_result(tmp_path / "runs" / "digits012" / "linear-tuned")
    report = build_report(TUNE_TABLE, tmp_path / "runs")
    assert ["Linear", "ours (tuned)", kept["test_acc"]] in report.rows
    assert any(note.startswith("ours (tuned)") for note in report.notes)
    assert tune_plan(plan, QUIET).reused == ["digits012/linear"]
