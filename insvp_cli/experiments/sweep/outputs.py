"""What a sweep writes: ``sweep.md``, ``sweep.csv``, ``sweep.json``, ``sweep.png`` and ``best.yaml``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ...common.atomic import atomic_write_text
from ...common.tables import csv_table, markdown_table, short_value
from ...config.overrides import flatten, format_override
from ...resolve.layers import resolve_config
from .plan import FINAL, RESULT, Sweep
from .rows import SweepResult, TrialRow, ties


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
    trial = flatten(sweep.trial(best.params, best.run_dir).config.to_dict())
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
    from .plot import sweep_plot

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
