"""Several seeds of one run: where they go, how they differ, and their mean ± std (N).

A run trained with several seeds (``insvp compare --seeds N``, ``insvp reproduce --seeds N``) keeps its folder for
the first seed, so a single-seed run already there counts as seed 0, and puts seed ``k`` beside it in
``<run>-seed<k>`` with ``train.seed`` raised by ``k``: only the initialisation and the data order change, the
splits (``data.seed``) stay, except a few-shot run's K images per class (``data.shots``), whose ``data.shot_seed``
is raised by ``k`` too, as NOAH's few-shot protocol draws new shots per seed. Tables show the mean, the sample
standard deviation and the number of seeds.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .rundir import SUMMARY

if TYPE_CHECKING:
    from .config import Config

SEED_SUFFIX = "-seed"


def seed_dirs(run_dir: Path, seeds: int) -> list[Path]:
    """The folders of ``seeds`` seeds of ``run_dir``: itself, then ``<run_dir>-seed1`` ..."""
    return [run_dir, *(run_dir.with_name(f"{run_dir.name}{SEED_SUFFIX}{k}") for k in range(1, seeds))]


def seed_overrides(cfg: Config, k: int) -> list[str]:
    """The ``--set`` values of seed ``k`` of a run whose resolved config is ``cfg``."""
    shots = [f"data.shot_seed={cfg.data.shot_seed + k}"] if cfg.data.shots is not None else []
    return [f"train.seed={cfg.train.seed + k}", *shots]


def finished_seeds(run_dir: Path) -> list[Path]:
    """``run_dir`` and its ``-seed<k>`` siblings that hold a finished run, in seed order."""
    pattern = re.compile(re.escape(run_dir.name) + re.escape(SEED_SUFFIX) + r"(\d+)")
    siblings = sorted((int(m.group(1)), p) for p in run_dir.parent.glob(f"{run_dir.name}{SEED_SUFFIX}*")
                      if (m := pattern.fullmatch(p.name)))
    return [p for p in (run_dir, *(p for _, p in siblings)) if (p / SUMMARY).is_file()]


def seed_test_accuracies(runs: Sequence[Path]) -> list[float]:
    """The test accuracy in each run's ``summary.json``."""
    return [float(json.loads((run / SUMMARY).read_text())["test_acc"]) for run in runs]


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation and count of one number over seeds."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))

    def format(self, digits: int = 2) -> str:
        """``85.31 ± 0.42 (3)``; one seed: the number alone."""
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} ({self.n})"

    def __post_init__(self) -> None:
        if self.n < 1 or not math.isfinite(self.mean):
            raise ValueError(f"a spread needs at least one finite value, got n={self.n}, mean={self.mean}")
