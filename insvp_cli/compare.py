"""``insvp compare``: several methods trained on one recipe, one after another, in a Table-1-style table.

Every method gets the same data, backbone, seed and schedule: the recipe with only ``method.name``
switched (its per-method deltas ``methods: {M: ...}`` apply). Every method's config, and what it needs from
the data (TransHP: a hierarchy), is checked before the first one trains. Finished runs are reused and
interrupted ones resumed, so an interrupted comparison continues where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checkpoint import atomic_write_text
from .config import Config
from .render import csv_table, markdown_table
from .requirements import bind_requirements
from .resolve import resolve_config
from .rundir import SUMMARY
from .training import fit

HEADERS = ("method", "extra params", "trainable params", "val acc", "test acc", "train images/s")


@dataclass
class MethodResult:
    method: str
    summary: dict[str, Any]
    train_images_per_s: float

    def row(self) -> tuple[str, int, int, float, float, float]:
        s = self.summary
        return (self.method, s["trainable_params_without_head"], s["trainable_params"], s["val_acc"],
                s["test_acc"], self.train_images_per_s)


def run_or_reuse(cfg: Config, run_dir: Path, console=None) -> dict[str, Any]:
    """The run's summary: read if the run finished, else trained (or resumed) now."""
    summary = run_dir / SUMMARY
    if summary.is_file():
        return json.loads(summary.read_text())
    return fit(cfg, run_dir, console=console)


def mean_train_speed(run_dir: Path) -> float:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    speeds = [r["train_images_per_s"] for r in rows]
    return sum(speeds) / len(speeds)


def compare_runs(recipe: str | Path | dict | None, methods: list[str], out: Path,
                 overrides: list[str] | tuple[str, ...] = (), console=None) -> list[MethodResult]:
    """Train each of ``methods`` on ``recipe`` into ``out/<method>``; write ``out/comparison.{md,csv}``."""
    # fail fast: a bad value or a need the data does not meet stops the comparison before anything trains
    configs = {m: bind_requirements(resolve_config(recipe, [*overrides, f"method.name={m}"])) for m in methods}
    results = []
    for method, cfg in configs.items():
        summary = run_or_reuse(cfg, out / method, console)
        results.append(MethodResult(method, summary, mean_train_speed(out / method)))
    rows = [r.row() for r in results]
    atomic_write_text(markdown_table(HEADERS, rows, digits=2), out / "comparison.md")
    atomic_write_text(csv_table(HEADERS, rows), out / "comparison.csv")
    return results
