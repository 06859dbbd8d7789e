"""Names the command line needs before anything heavy is imported (its help and its choices never import torch)."""

from __future__ import annotations

# the paper's tables and figure that ``insvp reproduce`` and ``insvp report`` know (insvp_cli.reproduce.tables), and
# the few-shot table (insvp_cli.reproduce.fewshot)
PAPER_TABLES = ("table1", "table2", "table3", "table4", "table5", "fig7", "fewshot")
