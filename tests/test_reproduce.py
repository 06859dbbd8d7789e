"""`insvp reproduce` and `insvp report`: the paper's numbers, the table definitions, dry runs, and a tiny
end-to-end reproduction of a test-only table on offline digits."""

from __future__ import annotations

import csv
import io
import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from insvp_cli.cli import app
from insvp_cli.common.errors import UsageError
from insvp_cli.common.tables import latex_table, markdown_table
from insvp_cli.experiments.reproduce.paper_tables import PAPER_TABLES, PUBLISHED, PublishedTable
from insvp_cli.experiments.reproduce.report import MISSING, build_report, render
from insvp_cli.experiments.reproduce.runner import dry_run_lines, plan_table, run_plan
from insvp_cli.experiments.reproduce.sizes import train_images
from insvp_cli.experiments.reproduce.tables import (
    HTA_FOLDERS,
    TABLES,
    Aggregate,
    Cell,
    RunSpec,
    TableDef,
    register_table,
)
from insvp_cli.resolve.layers import resolve_config
from insvp_cli.resolve.needs import MissingNeed, bind_requirements
from tests.conftest import insvp, tiny_run

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

# --------------------------------------------------------------------------------------------------
# The published numbers


def test_table1_average_is_the_mean_of_the_ten_datasets():
    table = PUBLISHED["table1"]
    for row, values in table.rows.items():
        *datasets, avg = values
        if avg is not None:
            assert abs(sum(datasets) / len(datasets) - avg) <= 0.05 + 1e-9, row


def test_published_numbers_agree_with_the_papers_text_and_each_other():
    t1, t2, t5 = PUBLISHED["table1"], PUBLISHED["table2"], PUBLISHED["table5"]
    # §4.4.1: +2.8 on average over DAM-VP; §4.4.2: +1.8 / +0.8 / +1.0 over E2VPT on VTAB-1k
    assert round(t1.value("InsVP", "Avg") - t1.value("DAM-VP", "Avg"), 1) == 2.8
    assert [round(a - b, 1) for a, b in zip(t2.rows["InsVP"], t2.rows["E2VPT"], strict=True)] == [1.8, 0.8, 1.0]
    # §4.5.1 on CUB: +1.8 (p_l), +0.8 (p_g), +1.0 (p_c); the ablation's ends are Table 1's Linear and InsVP
    cub = [t5.value(row, "CUB") for row in t5.rows]
    assert [round(cub[i + 1] - cub[i], 1) for i in range(3)] == [1.8, 0.8, 1.0]
    for column in t5.columns:
        assert t5.value("none", column) == t1.value("Linear", column)
        assert t5.value("p_l + p_g + p_c + p_s", column) == t1.value("InsVP", column)
    assert PUBLISHED["fig7"].value("InsVP (Table 1)", "CUB") == t1.value("InsVP", "CUB")


def test_a_published_row_must_fill_its_columns():
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        PublishedTable("T", "c", ("a", "b", "c"), {"row": (1.0, 2.0)})


# --------------------------------------------------------------------------------------------------
# Table definitions and dry runs

EXPECTED_RUNS = {"table1": 180, "table2": 190, "table3": 25, "table4": 30, "table5": 20, "fig7": 23, "fewshot": 30}
EXPECTED_METHODS = {
    "table1": ["full", "linear", "partial", "mlp", "bias", "sidetune", "adapter", "adaptformer", "vp", "vpt",
               "damvp", "ilmvp", "yoo", "e2vpt", "transhp", "lion", "autovp", "insvp"],
    "table2": ["full", "linear", "partial", "mlp", "bias", "sidetune", "adapter", "vpt", "e2vpt", "insvp"],
    "table3": ["full", "vp", "vpt", "damvp", "insvp"],
    "table4": ["full", "vp", "vpt", "damvp", "e2vpt", "insvp"],
    "table5": ["insvp"],
    "fig7": ["insvp"],
    "fewshot": ["linear", "vpt", "insvp"],
}


def bound(cfg):
    """``cfg`` with the values that follow from its data, as a plan holds it (unchanged when the data lacks them)."""
    try:
        return bind_requirements(cfg)
    except MissingNeed:
        return cfg


def dry_run(*args: str) -> tuple[list[str], str]:
    """(the commands, the whole output) of ``insvp reproduce ... --dry-run``."""
    result = runner.invoke(app, ["reproduce", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    return [line for line in result.output.splitlines() if line and not line.startswith("#")], result.output


def parse(command: str) -> tuple[str | None, list[str], str]:
    """(recipe, --set values, --out) of a printed ``insvp train`` command."""
    args = shlex.split(command)
    assert args[:2] == ["insvp", "train"]
    recipe = args[args.index("--recipe") + 1] if "--recipe" in args else None
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    return recipe, sets, args[args.index("--out") + 1]


def test_acceptance_table1_dry_run_lists_every_run_and_the_missing_folders():
    commands, output = dry_run("table1", "--data-root", "/nonexistent")
    assert len(commands) == 18 * 10  # every row of the paper's Table 1 runs, none is published-only
    assert {cell.row for cell in TABLES.get("table1").cells} == set(PUBLISHED["table1"].rows)
    assert "missing data folders under /nonexistent (10):" in output
    for folder in HTA_FOLDERS.values():
        assert f"#   /nonexistent/{folder}  (" in output
    recipe, sets, out = parse(next(c for c in commands if c.endswith("svhn/insvp")))
    assert recipe == "svhn" and out == "runs/reproduce/vit-b16-in21k/svhn/insvp"  # a shipped recipe, by name
    assert sets == ["method.name=insvp", "method.protocol=published", "data.root=/nonexistent/svhn"]
    assert "image-steps" in output
    # each run says its protocol: the cited works' rows train as their authors did (docs/protocols.md)
    lines = output.splitlines()
    run = next(i for i, x in enumerate(lines) if x.startswith("# [") and x.split()[2] == "vit-b16-in21k/cub/vpt:")
    vpt = lines[run + 1]
    assert vpt.startswith("#   protocol published: sgd (momentum 0.9) lr 0.1") and "(KMnP/vpt:" in vpt
    ilmvp = next(x for x in lines if x.startswith("#   protocol published: adam lr 0.01"))
    assert "multistep x0.1 at 0.5, 0.72, 200 epochs" in ilmvp
    # TransHP: CIFAR-100's hierarchy is built in; the other data folders need their hierarchy.yaml
    assert "# method transhp needs a coarse-label hierarchy, missing for 9 data folders (/nonexistent/dtd," in output


@pytest.mark.parametrize("name", PAPER_TABLES)
def test_dry_run_counts_and_commands_resolve_to_the_planned_configs(name, tmp_path):
    table = TABLES.get(name)
    assert table.methods() == EXPECTED_METHODS[name]
    commands, _ = dry_run(name, "--data-root", str(tmp_path), "--runs", str(tmp_path / "runs"))
    assert len(commands) == EXPECTED_RUNS[name]
    plan = plan_table(name, tmp_path, tmp_path / "runs")
    for command, run in zip(commands, plan.runs, strict=True):
        recipe, sets, out = parse(command)
        assert bound(resolve_config(recipe, sets, bind=False)) == run.cfg  # copy-pasteable: the same config
        assert Path(out) == tmp_path / "runs" / run.spec.name


def test_insvp_only_counts():
    counts = [len(dry_run(t, "--data-root", "d", "--methods", "insvp")[0]) for t in PAPER_TABLES]
    assert counts == [10, 19, 5, 5, 20, 23, 10]


def test_tables_use_their_recipes():
    recipes = {name: {run.recipe for run in TABLES.get(name).runs()} for name in PAPER_TABLES}
    assert recipes["table1"] == {f"{f}.yaml" for f in HTA_FOLDERS.values()}
    assert len(recipes["table2"]) == 19 and all(r.startswith("vtab/") for r in recipes["table2"])
    assert recipes["table3"] == {f"swin/{f}.yaml" for f in ("cub", "nabirds", "cifar100", "gtsrb", "svhn")}
    assert recipes["table4"] == {f"mocov3/{f}.yaml" for f in ("cub", "nabirds", "cifar100", "gtsrb", "svhn")}
    assert recipes["fig7"] == {"cub.yaml"}
    assert recipes["fewshot"] == {"food101.yaml", "flowers102.yaml"}
    assert all((REPO / "recipes" / r).is_file() for names in recipes.values() for r in names)


def test_fewshot_seeds_draw_their_own_shots(tmp_path):
    """NOAH's protocol: every seed of a K-shot cell trains on its own K images per class (data.shot_seed)."""
    plan = plan_table("fewshot", tmp_path, tmp_path, methods=["insvp"], seeds=3)
    by_name = {run.spec.name: run.cfg for run in plan.runs}
    assert len(by_name) == 2 * 5 * 3
    seeds = [by_name[f"vit-b16-in21k/food101/insvp-4shot{suffix}"] for suffix in ("", "-seed1", "-seed2")]
    assert [(c.data.shots, c.data.shot_seed, c.train.seed - seeds[0].train.seed) for c in seeds] == [
        (4, 0, 0), (4, 1, 1), (4, 2, 2)]


def test_table5_switches_one_component_more_per_row(tmp_path):
    plan = plan_table("table5", tmp_path, tmp_path)
    by_run = {run.spec.name: run.cfg.method for run in plan.runs}
    switches = ("patch_prompter", "global_prompter", "common_prompt", "specific_prompter")
    for on, row in enumerate(TABLES.get("table5").rows):
        cells = [c for c in TABLES.get("table5").cells if c.row == row]
        assert len(cells) == 4
        for cell in cells:
            method = by_run[cell.run.name]
            assert [getattr(method, s) for s in switches] == [i < on for i in range(4)], row
    # the full row is Table 1's InsVP run: trained once, in both tables
    assert {c.run for c in TABLES.get("table5").cells if c.row.endswith("p_s")} <= set(TABLES.get("table1").runs())


def test_fig7_sweeps_share_the_run_at_the_defaults(tmp_path):
    table = TABLES.get("fig7")
    assert len(table.cells) == 6 + 6 + 7 + 7 and len(table.runs()) == 23
    base = {c.row for c in table.cells if c.run.name.endswith("/insvp-paper")}
    assert base == {"L_p = 9", "N_F = 12", "beta_I = 0.7", "beta_F = 0.5"}
    cfgs = {r.spec.name: r.cfg.method for r in plan_table("fig7", tmp_path, tmp_path).runs}
    base_cfg = cfgs["vit-b16-in21k/cub/insvp-paper"]
    assert (base_cfg.prompt_len, base_cfg.prompt_blocks, base_cfg.global_weight, base_cfg.common_weight) == (
        9, None, 0.7, 0.5)
    assert cfgs["vit-b16-in21k/cub/insvp-paper-betaI0.3"].patch_weight == pytest.approx(0.7)
    assert cfgs["vit-b16-in21k/cub/insvp-paper-NF4"].prompt_blocks == 4


def test_equal_run_names_mean_equal_runs_across_tables():
    seen: dict[str, RunSpec] = {}
    for name in PAPER_TABLES:
        for run in TABLES.get(name).runs():
            assert seen.setdefault(run.name, run) == run


def test_unknown_table_and_method_are_usage_errors():
    proc = insvp("reproduce", "table9", "--data-root", "d", "--dry-run")  # the parser's choices
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"'table9' is not one of {', '.join(PAPER_TABLES)}" in proc.stderr
    proc = insvp("report", "--table", "table9")
    assert proc.returncode == 2 and f"'table9' is not one of {', '.join(PAPER_TABLES)}" in proc.stderr
    result = runner.invoke(app, ["reproduce", "table3", "--data-root", "d", "--dry-run", "--methods", "e2vpt"])
    assert isinstance(result.exception, UsageError)
    assert "its methods: full, vp, vpt, damvp, insvp" in str(result.exception)


def test_weights_dir_replaces_local_weight_files(tmp_path):
    plan = plan_table("table4", tmp_path, tmp_path, ["insvp"], weights_dir=tmp_path / "w")
    assert {r.cfg.backbone.weights for r in plan.runs} == {str(tmp_path / "w" / "mocov3-vit-b-300ep.pth.tar")}
    assert plan.missing_weights() == [tmp_path / "w" / "mocov3-vit-b-300ep.pth.tar"]
    with pytest.raises(UsageError, match="missing data folders"):
        run_plan(plan, console=None)
    assert {r.cfg.backbone.weights for r in plan_table("table1", tmp_path, tmp_path, ["vp"],
                                                       weights_dir=tmp_path).runs} == {"timm"}


def test_several_gpus_launch_torchrun_with_the_batch_split(tmp_path):
    plan = plan_table("table3", tmp_path, tmp_path / "runs", ["insvp"], ngpus=4)
    run = plan.runs[0]
    assert run.command[:7] == ["torchrun", "--standalone", "--nproc_per_node", "4", "-m", "insvp_cli", "train"]
    assert run.cfg.data.batch_size == 16 and "data.batch_size=16" in run.command
    assert any("torchrun on 4 GPUs" in line for line in dry_run_lines(plan))
    with pytest.raises(UsageError, match="does not split over 3 GPUs"):
        plan_table("table3", tmp_path, tmp_path, ["insvp"], ngpus=3)
    cpu = plan_table("table3", tmp_path, tmp_path, ["insvp"], ["train.device=cpu"], ngpus=4)
    assert cpu.runs[0].launcher == "process" and cpu.runs[0].cfg.data.batch_size == 64


def test_started_runs_resume_and_other_settings_conflict(tmp_path):
    plan = plan_table("table5", tmp_path, tmp_path / "runs", ["insvp"])
    run = plan.runs[0]
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "config.yaml").write_text(run.cfg.to_yaml())
    again = plan_table("table5", tmp_path / "moved", tmp_path / "runs", ["insvp"]).runs[0]
    assert again.state == "resume"
    assert again.command == ["insvp", "train", "--resume", str(run.run_dir), "--set",
                             f"data.root={tmp_path / 'moved' / 'cub'}"]
    (run.run_dir / "summary.json").write_text("{}")
    assert plan_table("table5", tmp_path, tmp_path / "runs", ["insvp"]).runs[0].state == "done"
    other = plan_table("table5", tmp_path, tmp_path / "runs", ["insvp"], ["train.epochs=3"])
    assert other.runs[0].state == "conflict" and "train.epochs: 100 there, 3 now" in other.runs[0].conflict
    with pytest.raises(UsageError, match="hold runs with other settings"):
        run_plan(other, console=None)


def test_known_sizes():
    cfg = resolve_config(REPO / "recipes" / "cifar100.yaml")
    assert train_images(cfg.data) == 45_000  # 50,000 less the 10 % validation split
    assert train_images(resolve_config(REPO / "recipes" / "cub.yaml").data) == 5_394
    assert train_images(resolve_config(REPO / "recipes" / "vtab" / "dtd.yaml").data) == 1_000
    assert train_images(resolve_config(None, ["data.name=vtab"]).data) == 800
    assert train_images(resolve_config(None, ["data.name=imagefolder"]).data) is None


# --------------------------------------------------------------------------------------------------
# Renderers


def test_latex_and_markdown_keep_marks_in_numeric_columns():
    rows = [["a_b", 1.25, MISSING], ["c", -0.5, ""], ["d", "", 3.0]]
    latex = latex_table(["name", "x%", "y"], rows, digits=1)
    assert latex.startswith("\\begin{tabular}{lrr}\n\\toprule\nname & x\\% & y \\\\\n\\midrule\n")
    assert "a\\_b & 1.2 & --- \\\\" in latex and "c & $-$0.5 &  \\\\" in latex and latex.endswith("\\end{tabular}\n")
    assert "|---|---:|---:|" in markdown_table(["name", "x", "y"], rows)


# --------------------------------------------------------------------------------------------------
# A tiny reproduction end to end: a test-only table on scikit-learn's digits with a tiny ViT, 1 epoch

TEST_PAPER = PublishedTable(
    "Test table", "made up for the tests", ("0-2", "3-5", "Avg"),
    {"Linear": (50.0, 50.0, 50.0), "Other": (70.0, 70.0, 70.0), "InsVP": (60.0, None, None)},
)


def _offline_run(method: str, classes: tuple[int, ...]) -> RunSpec:
    name = f"digits{''.join(map(str, classes))}/{method}"
    return RunSpec(name, None, (*tiny_run(method, 1), f"data.classes={list(classes)}"))


OFFLINE = register_table(TableDef(
    "offline-test", "offline test table", "method", ("Linear", "Other", "InsVP"), ("0-2", "3-5"),
    tuple(Cell(row, column, method, _offline_run(method, classes))
          for row, method in (("Linear", "linear"), ("InsVP", "insvp"))
          for column, classes in (("0-2", (0, 1, 2)), ("3-5", (3, 4, 5)))),
    aggregates=(Aggregate("Avg", ("0-2", "3-5")),), published=TEST_PAPER,
))


def test_reproduce_then_report_in_every_format(tmp_path):
    runs = tmp_path / "runs"
    args = ["reproduce", "offline-test", "--data-root", str(tmp_path), "--methods", "insvp", "--runs", str(runs)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 trained, 0 already finished, 0 failed" in result.output
    ours = [json.loads((runs / f"digits{c}/insvp/summary.json").read_text())["test_acc"] for c in ("012", "345")]

    # a second call trains nothing; a run without its summary is resumed (its last epoch is done: evaluation only)
    best = runs / "digits012" / "insvp" / "best.pt"
    mtime = best.stat().st_mtime_ns
    result = runner.invoke(app, args)
    assert "0 trained, 2 already finished" in result.output and best.stat().st_mtime_ns == mtime
    (best.parent / "summary.json").unlink()
    assert "digits012/insvp: resume" in runner.invoke(app, [*args, "--dry-run"]).output
    result = runner.invoke(app, args)
    assert "1 trained, 1 already finished" in result.output
    assert json.loads((best.parent / "summary.json").read_text())["test_acc"] == ours[0]

    report = build_report("offline-test", runs)
    assert report.headers == ["method", "source", "0-2", "3-5", "Avg"]
    assert report.finished == 2 and report.runs == 4
    assert report.rows == [
        ["Linear", "paper", 50.0, 50.0, 50.0],
        ["Linear", "ours", MISSING, MISSING, MISSING],
        ["Linear", "ours - paper", MISSING, MISSING, MISSING],
        ["Other", "paper", 70.0, 70.0, 70.0],
        ["InsVP", "paper", 60.0, "", ""],
        ["InsVP", "ours", ours[0], ours[1], sum(ours) / 2],
        ["InsVP", "ours - paper", round(ours[0] - 60.0, 2), "", ""],
    ]

    outputs = {}
    for fmt in ("table", "markdown", "csv", "latex"):
        result = runner.invoke(app, ["report", "--runs", str(runs), "--table", "offline-test", "--format", fmt])
        assert result.exit_code == 0, result.output
        outputs[fmt] = result.output
    assert f"| InsVP | ours | {ours[0]:.1f} | {ours[1]:.1f} | {sum(ours) / 2:.1f} |" in outputs["markdown"]
    assert "| Linear | ours | — | — | — |" in outputs["markdown"]
    rows = list(csv.reader(io.StringIO(outputs["csv"])))
    assert rows[0] == ["method", "source", "0-2", "3-5", "Avg"]
    assert rows[6][:4] == ["InsVP", "ours", str(ours[0]), str(ours[1])]
    assert f"InsVP & ours & {ours[0]:.1f} & {ours[1]:.1f}" in outputs["latex"]
    assert "Linear & ours & ---" in outputs["latex"]
    assert "offline test table (2/4 runs finished)" in outputs["table"] and f"{ours[1]:.1f}" in outputs["table"]
    assert render(report, "markdown") == outputs["markdown"]

    # without --table, only the paper's tables are looked for: none of them has a run here
    result = runner.invoke(app, ["report", "--runs", str(runs)])
    assert result.exit_code != 0 and "no finished run" in str(result.exception)


def test_report_marks_every_missing_run(tmp_path):
    report = build_report("table1", tmp_path)
    assert report.finished == 0 and report.runs == 180
    ours = [row for row in report.rows if row[1] == "ours"]
    assert len(ours) == 18 and all(cell == MISSING for row in ours for cell in row[2:])
    paper_rows = [row[0] for row in report.rows if row[1].startswith("paper")]
    assert paper_rows == list(PUBLISHED["table1"].rows)  # every published row, in the paper's order
    lion = next(row for row in report.rows if row[0] == "LION")
    assert lion[2:] == ["", "", "", 83.6, 90.5, "", 65.4, 90.8, "", "", ""]
    # published on other backbones: named, beside ours on the table's backbone, with no difference row
    for row, backbone in (("ILM-VP", "ResNeXt-101-32x8d"), ("Yoo et al", "MoCo v3 ViT-B/16"), ("AutoVP", "CLIP")):
        assert [r[1] for r in report.rows if r[0] == row] == [f"paper ({backbone})", "ours"]
    assert [r[1] for r in report.rows if r[0] == "TransHP"] == ["paper", "ours", "ours - paper"]
    assert any("published on another backbone" in note for note in report.notes)
    vtab = build_report("table2", tmp_path)
    assert vtab.headers[2:5] == ["Natural", "Specialized", "Structured"] and len(vtab.headers) == 2 + 3 + 19
    assert next(r for r in vtab.rows if r[:2] == ["InsVP", "paper"])[2:6] == [81.8, 85.2, 58.4, ""]
    result = runner.invoke(app, ["report", "--runs", str(tmp_path), "--table", "fig7", "--format", "csv"])
    assert result.exit_code == 0 and "L_p = 9,ours,—" in result.output and "InsVP (Table 1),paper,89.3" in result.output
