"""Reproducing the paper's tables (InsVP, ACM MM 2024): the runs of each table and its published numbers.

- :mod:`.paper_tables`: the published numbers of Tables 1-5 and Fig. 7, as printed.
- :mod:`.tables`: each table as data, cells -> runs (recipe, overrides, run folder); the registry ``TABLES``.
- :mod:`.runner`: ``insvp reproduce``: plan the runs, list them (``--dry-run``), train what is missing.
- :mod:`.report`: ``insvp report``: finished runs beside the published numbers.
- :mod:`.fewshot`: a few-shot table (NOAH's protocol), registered like the paper's.
"""

from ..names import PAPER_TABLES
from . import fewshot  # noqa: F401  (registers the few-shot table)
from .paper_tables import PUBLISHED, PublishedTable
from .report import Report, build_report, render
from .runner import Plan, plan_table, run_plan
from .tables import TABLES, Aggregate, Cell, RunSpec, TableDef, register_table

__all__ = [
    "PAPER_TABLES", "PUBLISHED", "TABLES", "Aggregate", "Cell", "Plan", "PublishedTable", "Report", "RunSpec",
    "TableDef", "build_report", "plan_table", "register_table", "render", "run_plan",
]
