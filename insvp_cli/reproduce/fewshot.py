"""A few-shot table for ``insvp reproduce``: NOAH's FGVC few-shot protocol (Zhang et al. 2022) on InsVP's datasets.

Each run keeps K training images per class (``data.shots``: 1, 2, 4, 8, 16); validation and test stay whole.
``insvp reproduce fewshot --seeds 3`` trains seeds 0, 1 and 2 of every cell, each drawing its own K images
(``data.shot_seed`` follows ``train.seed``: :mod:`insvp_cli.seeds`), and ``insvp report`` shows mean ± std (3).
The columns are the datasets of NOAH's few-shot benchmark that this project has recipes for (Food-101,
Oxford Flowers-102); the paper publishes no few-shot numbers, so the report has ours only.
"""

from __future__ import annotations

from .tables import METHOD_ROWS, VIT_IN21K, Cell, RunSpec, TableDef, hta_run, register_table

SHOTS = (1, 2, 4, 8, 16)
SEEDS = 3  # NOAH's seeds 0, 1, 2
COLUMNS = ("Food", "Flowers")
ROWS = ("Linear", "VPT", "InsVP")


def fewshot_run(column: str, row: str, shots: int) -> RunSpec:
    """Table 1's run of ``row`` on ``column`` with ``shots`` training images per class."""
    method, extra = METHOD_ROWS[row]
    return hta_run(VIT_IN21K, column, f"{method}-{shots}shot", (f"method.name={method}", *extra, f"data.shots={shots}"))


register_table(TableDef(
    "fewshot", "Few-shot (NOAH's protocol): K training images per class, ViT-B/16 ImageNet-21k", "method",
    tuple(f"{row} {k}-shot" for row in ROWS for k in SHOTS), COLUMNS,
    tuple(Cell(f"{row} {k}-shot", column, METHOD_ROWS[row][0], fewshot_run(column, row, k))
          for row in ROWS for k in SHOTS for column in COLUMNS),
    notes=(f"K-shot: data.shots=K training images per class, validation and test whole; train with --seeds {SEEDS} "
           "(seeds 0, 1, 2 draw their own K images) for mean ± std.",),
))
