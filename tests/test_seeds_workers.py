"""Seeds with error bars (``--seeds N`` in compare, reproduce and report) and reproduce workers that share a table's
runs (run-folder locks, ``--gpus``)."""

from __future__ import annotations

import io
import json
import os
import statistics

import pytest
from rich.console import Console

from insvp_cli.common.errors import UsageError
from insvp_cli.common.tables import Spread
from insvp_cli.experiments.compare import compare_runs
from insvp_cli.experiments.queue import QueuedRun, finished_seeds
from insvp_cli.experiments.reproduce.report import build_report
from insvp_cli.experiments.reproduce.runner import plan_table, run_plan
from insvp_cli.experiments.reproduce.tables import Cell, RunSpec, TableDef, register_table
from insvp_cli.experiments.reproduce.workers import Worker, gpu_workers, parse_gpus, reproduce_args, run_workers
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.runs.lock import RunLock
from insvp_cli.runtime import devices
from tests.conftest import insvp, one_line_error, tiny_run

# two tiny runs on the digits, for workers and seeds
TABLE = "seeds-workers-test"
register_table(TableDef(TABLE, "seeds and workers", "method", ("InsVP",), ("0-2", "3-5"), tuple(
    Cell("InsVP", column, "insvp", RunSpec(f"digits{''.join(map(str, classes))}/insvp", None,
                                           (*tiny_run("insvp", 1), f"data.classes={list(classes)}")))
    for column, classes in (("0-2", (0, 1, 2)), ("3-5", (3, 4, 5))))))
QUIET = Console(file=io.StringIO())
TABLE_FOR_CLI = "table2"  # a shipped table: the installed script knows it


def test_spread_formats_mean_std_and_count():
    assert Spread.of([80.0, 82.0, 84.0]).format() == "82.00 ± 2.00 (3)"
    assert Spread.of([80.0]).format(1) == "80.0"
    assert Spread.of([1.0, 2.0]).std == pytest.approx(statistics.stdev([1.0, 2.0]))


def test_seed_folders_keep_the_first_run_and_sit_beside_it(tmp_path):
    seeds = QueuedRun(resolve_config(None, ["train.seed=5"]), tmp_path / "vpt").seeds(3)
    assert [s.folder for s in seeds] == [tmp_path / "vpt", tmp_path / "vpt-seed1", tmp_path / "vpt-seed2"]
    assert [s.config.train.seed for s in seeds] == [5, 6, 7]  # only the seed differs
    for name in ("vpt", "vpt-seed2", "vpt-seedx", "vpt-seed1"):
        (tmp_path / name).mkdir()
    for name in ("vpt", "vpt-seed2", "vpt-seedx"):
        (tmp_path / name / "summary.json").write_text("{}")
    assert [run.path for run in finished_seeds(tmp_path / "vpt")] == [tmp_path / "vpt", tmp_path / "vpt-seed2"]


def test_compare_with_seeds_trains_each_seed_and_shows_mean_and_std(tmp_path):
    sets = [s for s in tiny_run("linear", 1) if not s.startswith("method.name=")]  # compare names the methods
    results = compare_runs(None, ["linear"], tmp_path, sets, seeds=2)
    seeds = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("linear", "linear-seed1")]
    configs = [(tmp_path / name / "config.yaml").read_text() for name in ("linear", "linear-seed1")]
    assert "seed: 0" in configs[0] and "seed: 1" in configs[1]
    spread = Spread.of([s["test_acc"] for s in seeds])
    assert results[0].row()[4] == spread.format() and f"{spread.format()} |" in (tmp_path / "comparison.md").read_text()


def test_reproduce_with_seeds_plans_the_extra_seeds_and_report_aggregates_them(tmp_path):
    runs = tmp_path / "runs"
    plan = plan_table(TABLE, tmp_path, runs, ["insvp"], seeds=2)
    assert [r.spec.name for r in plan.runs] == ["digits012/insvp", "digits012/insvp-seed1", "digits345/insvp",
                                                "digits345/insvp-seed1"]
    assert plan.runs[1].cfg.train.seed == plan.runs[0].cfg.train.seed + 1
    outcome = run_plan(plan, QUIET)
    assert sorted(outcome.trained) == sorted(r.spec.name for r in plan.runs)
    accs = [json.loads((runs / "digits012" / name / "summary.json").read_text())["test_acc"]
            for name in ("insvp", "insvp-seed1")]
    report = build_report(TABLE, runs)
    ours = next(row for row in report.rows if row[:2] == ["InsVP", "ours"])
    assert ours[2] == Spread.of(accs).format(1) and ours[2].endswith("(2)")
    assert any(note.startswith("mean ± std (N)") for note in report.notes)


def test_a_worker_skips_a_run_another_holds_and_trains_the_rest(tmp_path):
    runs = tmp_path / "runs"
    plan = plan_table(TABLE, tmp_path, runs, ["insvp"])
    with RunLock(runs / "digits012" / "insvp"):  # another worker trains this one
        outcome = run_plan(plan, QUIET)
    assert outcome.pending == ["digits012/insvp"] and outcome.trained == ["digits345/insvp"]
    finished = (runs / "digits345/insvp/summary.json").stat().st_mtime_ns
    # the same plan, made before either run started, as a worker that was slower to get there holds it
    again = run_plan(plan, QUIET)
    assert again.trained == ["digits012/insvp"] and again.reused == ["digits345/insvp"]
    assert (runs / "digits345/insvp/summary.json").stat().st_mtime_ns == finished  # not tested a second time


def test_workers_share_the_runs_each_run_trained_once(tmp_path):
    """``--gpus`` starts these processes, one per GPU; here on the CPU (``train.device=cpu`` in place of ``cuda``)."""
    runs = tmp_path / "runs"
    # the table is registered by the test module: the workers import it through sitecustomize
    (tmp_path / "sitecustomize.py").write_text("import tests.test_seeds_workers\n")
    pythonpath = os.pathsep.join([str(tmp_path), os.getcwd()])
    args = reproduce_args(TABLE, tmp_path, runs, 1, None, "insvp", False, [])
    said = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", pythonpath)
        code = run_workers(args, [Worker("0", "", "cpu"), Worker("1", "", "cpu")], runs, said.append)
    assert code == 0, said
    assert "worker on GPU 0 exited with 0" in said and "worker on GPU 1 exited with 0" in said
    assert all((runs / f"digits{c}/insvp/summary.json").is_file() for c in ("012", "345"))
    logs = [(runs / "workers" / f"gpu-{g}.log").read_text() for g in ("0", "1")]
    trained = [int(log.split(" trained, ")[0].rsplit(" ", 1)[-1]) for log in logs]  # ": K trained, ..."
    assert sum(trained) == 2  # every run trained once, by one worker or the other


@pytest.fixture
def four_gpus(tmp_path, monkeypatch):
    """The NVIDIA driver's folder of a machine with four GPUs (what visible_gpus counts)."""
    driver = tmp_path / "nvidia-gpus"
    for bus in range(4):
        (driver / f"0000:0{bus}:00.0").mkdir(parents=True)
    monkeypatch.setattr(devices, "NVIDIA_GPUS", driver)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_gpu_indices_count_the_gpus_this_process_sees(four_gpus, monkeypatch):
    assert gpu_workers("0,3") == [Worker("0", "0"), Worker("3", "3")]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # e.g. SLURM's allocation
    assert [w.visible for w in gpu_workers("1,0")] == ["3", "2"]
    assert {w.device for w in gpu_workers("0,1")} == {"cuda"}
    with pytest.raises(UsageError, match=r"--gpus 0,2: this process sees 2 GPUs, numbered 0-1 "
                                         r"\(CUDA_VISIBLE_DEVICES=2,3\); GPU 2 is not one of them"):
        gpu_workers("0,2")


def test_a_dry_run_with_gpus_shows_each_workers_gpu_and_device(four_gpus, monkeypatch, tmp_path, cli):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    code, output = cli("reproduce", TABLE, "--data-root", tmp_path, "--runs", tmp_path / "runs", "--methods", "insvp",
                       "--gpus", "1,0", "--dry-run")
    assert code == 0, output
    assert "--set train.device=cuda" in output and "torchrun" not in output  # one GPU per worker
    assert "worker on GPU 1: CUDA_VISIBLE_DEVICES=3" in output and "worker on GPU 0: CUDA_VISIBLE_DEVICES=1" in output


@pytest.mark.parametrize("dry_run", [True, False])
def test_gpus_that_are_not_there_stop_the_command_before_any_work(tmp_path, dry_run, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU, even on a machine with some
    proc = insvp("reproduce", TABLE_FOR_CLI, "--data-root", tmp_path, "--runs", tmp_path / "runs", "--gpus", "0,1",
                 *(["--dry-run"] if dry_run else []))
    one_line_error(proc.stderr, proc.returncode, 2, "--gpus 0,1: this process sees no CUDA GPU (CUDA_VISIBLE_DEVICES=)")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text", ["", "0,x", "1,1", "-1"])
def test_bad_gpu_lists_are_usage_errors(text):
    with pytest.raises(UsageError, match="--gpus"):
        parse_gpus(text)


def test_a_sweep_with_seeds_selects_on_the_mean_of_every_seed(tmp_path):
    from insvp_cli.experiments.sweep.plan import TRIALS, plan_sweep
    from insvp_cli.experiments.sweep.study import run_sweep

    sets = tiny_run("linear", 1, classes="[0, 1]", lr=None)
    result = run_sweep(plan_sweep(None, sets, tmp_path / "s", grids=["train.lr=[0.003, 0.03]"], seeds=2), QUIET)
    trials = tmp_path / "s" / TRIALS
    means = {}
    for row in result.rows:
        accs = [json.loads((trials / name / "summary.json").read_text())["val_acc"]
                for name in (row.run_dir, f"{row.run_dir}-seed1")]
        assert "seed: 1" in (trials / f"{row.run_dir}-seed1" / "config.yaml").read_text()
        assert row.val_acc == pytest.approx(statistics.fmean(accs))
        means[row.run_dir] = row.val_acc
    assert result.best.val_acc == max(means.values())
    with pytest.raises(UsageError, match="--seeds"):
        plan_sweep(None, sets, tmp_path / "t", seeds=0)
