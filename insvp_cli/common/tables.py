"""Plain-text renderings of a table (headers + rows of numbers and strings): Markdown, CSV, LaTeX, human cells.

Rich tables on the terminal, Markdown for the README and reports, CSV for spreadsheets and plots, LaTeX
for papers all render the same rows, so each number is formatted in one place.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

Value = str | int | float
Rows = Sequence[Sequence[Value]]
MARKS = ("", "\u2014")  # a blank or an em dash: no value (not published, missing), allowed in a numeric column


def numeric_columns(headers: Sequence[str], rows: Rows) -> list[bool]:
    """Which columns hold numbers (right-aligned): at least one number and nothing else but :data:`MARKS`."""
    return [any(isinstance(row[j], (int, float)) for row in rows)
            and all(isinstance(row[j], (int, float)) or row[j] in MARKS for row in rows) for j in range(len(headers))]


def human(cell: Value, digits: int = 3) -> str:
    """A cell for people: integers with thousands separators, floats with ``digits`` decimals."""
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int):
        return f"{cell:,}"
    if isinstance(cell, float):
        return f"{cell:.{digits}f}"
    return cell


def short_value(value: object) -> str:
    """A config value as people write it: floats in their shortest form (``0.001``, ``1e-05``), others as ``str``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_table(headers: Sequence[str], rows: Rows, digits: int = 3) -> str:
    """A GitHub Markdown table; numeric columns are right-aligned."""
    numeric = numeric_columns(headers, rows)
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


# LaTeX's special characters in text mode, and the dash marks that should be typeset as rules, not symbols
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "\u2014": "---", "\u2013": "--", "\u2212": "$-$"}


def latex_escape(text: str) -> str:
    """``text`` safe in a LaTeX table cell (special characters escaped, em dash as ``---``)."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def latex_table(headers: Sequence[str], rows: Rows, digits: int = 3) -> str:
    """A booktabs ``tabular`` (``\\usepackage{booktabs}``): numeric columns right-aligned, the others left."""
    numeric = numeric_columns(headers, rows)
    lines = [
        "\\begin{tabular}{" + "".join("r" if n else "l" for n in numeric) + "}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in headers) + r" \\",
        "\\midrule",
        *(" & ".join(_latex_cell(cell, digits) for cell in row) + r" \\" for row in rows),
        "\\bottomrule",
        "\\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def _latex_cell(cell: Value, digits: int) -> str:
    text = latex_escape(human(cell, digits))
    # a hyphen in text mode is shorter than a minus sign
    return f"$-${text[1:]}" if isinstance(cell, (int, float)) and text.startswith("-") else text


def rich_table(headers: Sequence[str], rows: Sequence[Sequence[Value]], title: str, digits: int = 3) -> Table:
    """Rows as a rich table; numeric columns right-aligned, floats with ``digits`` decimals."""
    from rich.table import Table

    table = Table(title=title)
    for j, header in enumerate(headers):
        numeric = all(isinstance(row[j], (int, float)) for row in rows)
        spread = any(isinstance(row[j], str) and " ± " in row[j] for row in rows)  # mean ± std (N): one line
        table.add_column(header, justify="right" if numeric or spread else "left", no_wrap=spread)
    for row in rows:
        table.add_row(*(human(cell, digits) for cell in row))
    return table


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
