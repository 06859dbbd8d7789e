"""Plain-text renderings of a table (headers + rows of numbers and strings): Markdown, CSV, human cells.

Rich tables on the terminal, Markdown for the README and reports, CSV for spreadsheets and plots all
render the same rows, so each number is formatted in one place.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

Cell = str | int | float
Rows = Sequence[Sequence[Cell]]


def human(cell: Cell, digits: int = 3) -> str:
    """A cell for people: integers with thousands separators, floats with ``digits`` decimals."""
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int):
        return f"{cell:,}"
    if isinstance(cell, float):
        return f"{cell:.{digits}f}"
    return cell


def markdown_table(headers: Sequence[str], rows: Rows, digits: int = 3) -> str:
    """A GitHub Markdown table; numeric columns are right-aligned."""
    numeric = [bool(rows) and all(isinstance(row[j], (int, float)) for row in rows) for j in range(len(headers))]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += ["| " + " | ".join(human(cell, digits) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(headers: Sequence[str], rows: Rows) -> str:
    """CSV with raw numbers (no separators or rounding), for spreadsheets and plotting."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()
