"""Several seeds of one run: where they go, how they differ, and their mean ± std (N).

A run trained with several seeds (``insvp compare --seeds N``, ``insvp reproduce --seeds N``) keeps its folder for
the first seed, so a single-seed run already there counts as seed 0, and puts seed ``k`` beside it in
``<run>-seed<k>`` with ``train.seed`` raised by ``k``: only the initialisation and the data order change, the
splits (``data.seed``) stay. Tables show the mean, the sample standard deviation and the number of seeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from ..runs.folder import SUMMARY

SEED_SUFFIX = "-seed"


def seed_dirs(run_dir: Path, seeds: int) -> list[Path]:
    """The folders of ``seeds`` seeds of ``run_dir``: itself, then ``<run_dir>-seed1`` ..."""
    return [run_dir, *(run_dir.with_name(f"{run_dir.name}{SEED_SUFFIX}{k}") for k in range(1, seeds))]


def seed_override(base_seed: int, k: int) -> str:
    """The ``--set`` of seed ``k`` of a run whose own seed is ``base_seed``."""
    return f"train.seed={base_seed + k}"


def finished_seeds(run_dir: Path) -> list[Path]:
    """``run_dir`` and its ``-seed<k>`` siblings that hold a finished run, in seed order."""
    pattern = re.compile(re.escape(run_dir.name) + re.escape(SEED_SUFFIX) + r"(\d+)")
    siblings = sorted((int(m.group(1)), p) for p in run_dir.parent.glob(f"{run_dir.name}{SEED_SUFFIX}*")
                      if (m := pattern.fullmatch(p.name)))
    return [p for p in (run_dir, *(p for _, p in siblings)) if (p / SUMMARY).is_file()]


def seed_test_accuracies(runs: Sequence[Path]) -> list[float]:
    """The test accuracy in each run's ``summary.json``."""
    return [float(json.loads((run / SUMMARY).read_text())["test_acc"]) for run in runs]
