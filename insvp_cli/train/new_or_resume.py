"""``insvp train``'s core: a new run or a resumed one, decided in one place, then trained by ``training.fit``.

This module imports no torch until training starts, so a bad recipe, override or ``--out`` fails fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common.errors import UsageError
from ..resolve.layers import resolve_config
from ..resolve.recipes import Recipe
from ..runs.folder import check_new_run_dir, default_run_dir, resume_config


def train(recipes: Recipe | Sequence[Recipe] | None, sets: Sequence[str], out: Path | None = None,
          resume: Path | None = None, *, console=None) -> tuple[dict[str, Any], Path]:
    """``insvp train``: a new run from recipes and ``--set`` values, or the run in ``resume`` continued.

    New or resumed is decided here, once: a new run resolves its config and needs ``out`` (default:
    ``output_dir/run_name``) absent or empty; a resumed run takes its folder's ``config.yaml`` plus ``sets``, and
    :func:`~insvp_cli.train.loop.fit` checks that they change only what a resume may change.

    Returns:
        The run's summary and its folder.

    Raises:
        UsageError: ``resume`` with recipes or ``out``; a bad recipe or override; an ``out`` that holds something;
            a finished run resumed without more epochs; a change a resume may not make.
    """
    if resume is not None:
        if recipes or out is not None:
            raise UsageError("--resume continues a run with its own config.yaml and folder; drop --recipe and --out")
        cfg, run_dir = resume_config(resume, sets), resume
    else:
        cfg = resolve_config(recipes, sets)
        run_dir = out if out is not None else default_run_dir(cfg)
        check_new_run_dir(run_dir)
    from .loop import fit

    return fit(cfg, run_dir, console=console), run_dir
