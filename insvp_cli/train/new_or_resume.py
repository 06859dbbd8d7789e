"""``insvp train``'s core: a new run or a resumed one, decided in one place, then trained by :func:`.loop.fit`.

This module imports no torch until training starts, so a bad recipe, override or ``--out`` fails fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..common.errors import UsageError
from ..resolve.layers import resolve_config
from ..resolve.recipes import Recipe
from ..runs.folder import RunFolder


def train(recipes: Recipe | Sequence[Recipe] | None, sets: Sequence[str], out: Path | None = None,
          resume: Path | None = None, *, console=None) -> tuple[dict[str, Any], Path]:
    """``insvp train``: a new run from recipes and ``--set`` values, or the run in ``resume`` continued.

    New or resumed is decided here, once: a new run resolves its config (every layer, once) and needs ``out``
    (default: ``output_dir/run_name``) absent or empty; a resumed run takes its folder's stored ``config.yaml`` with
    ``sets`` applied key by key, and only what a resume may change (:meth:`~insvp_cli.runs.folder.RunFolder.
    resume_config`).

    Returns:
        The run's summary and its folder.

    Raises:
        UsageError: ``resume`` with recipes or ``out``; a bad recipe or override; an ``out`` that holds something;
            a finished run resumed without more epochs; a change a resume may not make.
    """
    if resume is not None:
        if recipes or out is not None:
            raise UsageError("--resume continues a run with its own config.yaml and folder; drop --recipe and --out")
        folder = RunFolder(resume)
        cfg = folder.resume_config(sets)
    else:
        cfg = resolve_config(recipes, sets)
        folder = RunFolder(out) if out is not None else RunFolder.default(cfg)
        folder.check_new()
    from .loop import fit  # torch: only once the command line is known to be good

    return fit(cfg, folder.path, console=console), folder.path
