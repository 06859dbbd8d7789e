"""``insvp report``: finished runs in the layout of the paper's tables, beside the published numbers.

For every row of a table: the paper's numbers (``paper``), ours (``ours``: test accuracy of the run's
``summary.json``) and the difference (``ours - paper``). Rows the paper publishes that this project does
not run appear as ``paper`` rows only. Rows whose published numbers come from another backbone than the
table's (Table 1's ILM-VP, Yoo et al and AutoVP) name it (``paper (CLIP)``) and have no difference row: ours
are on the table's backbone. A run that is missing or unfinished shows
:data:`MISSING`; a value the paper does not publish is blank. Mean columns (Table 1's ``Avg``, Table 2's
group means) are computed for ours only when every member is there. A run tuned by ``insvp reproduce --tune``
(its finished sweep) is shown instead of the untuned run, and its row is labelled ``ours (tuned)`` (or names
its tuned columns when only some are).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...common.errors import UsageError
from ...common.tables import Spread, Value, csv_table, latex_table, markdown_table
from ..queue import finished_seeds, test_accuracies
from .paper_tables import PAPER_TABLES
from .tables import TABLES, TUNED_SUFFIX, TableDef

MISSING = "—"  # a run that is missing or unfinished
NOT_PUBLISHED = ""
FORMATS = ("table", "markdown", "csv", "latex")  # "table" is a rich table on the terminal (the CLI draws it)
DIGITS = 1  # the paper prints one decimal
TUNED_NOTE = ("ours (tuned): learning rate and weight decay chosen per run on the validation split by insvp sweep "
              "(insvp reproduce --tune), the selected trial's test accuracy (VTAB-1k: of the final run on "
              "train800val200 with the chosen values)")
SEEDS_NOTE = ("mean ± std (N): the test accuracy over N seeds (insvp reproduce --seeds N; train.seed raised by one per "
              "seed, the same splits); group means and differences use the mean")
PROTOCOL_NOTE = ("paper: the release's best test accuracy over 100 epochs; ours: test accuracy at the epoch "
                 "selected on the validation split (VTAB-1k final protocol: the last epoch)")


@dataclass
class Report:
    """One table ready to render: ``headers``, ``rows`` of strings and numbers, and notes for under it."""

    name: str
    title: str
    headers: list[str]
    rows: list[list[Value]]
    notes: list[str]
    finished: int
    runs: int


def read_results(table: TableDef, runs_dir: Path) -> dict[str, tuple[float, bool, Spread | None]]:
    """Test accuracy of every finished run of ``table`` under ``runs_dir``, whether it was tuned, and its spread over
    seeds (``insvp reproduce --seeds N``: the run and its finished ``-seed<k>`` siblings; ``None``: one seed), by run
    name; the accuracy of several seeds is their mean.

    A finished sweep of the run (``insvp reproduce --tune``: ``<run>-tuned/sweep.json``) wins over the untuned run.
    """
    from ..sweep.outputs import finished_test_acc

    results = {}
    for run in table.runs():
        tuned = finished_test_acc(runs_dir / f"{run.name}{TUNED_SUFFIX}")
        seeds = finished_seeds(runs_dir / run.name)
        if tuned is not None:
            results[run.name] = (tuned, True, None)
        elif accuracies := test_accuracies(seeds):
            spread = Spread.of(accuracies)
            results[run.name] = (spread.mean, False, spread if spread.n > 1 else None)
    return results


def _mean(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else sum(values) / len(values)


def build_report(table: TableDef | str, runs_dir: Path) -> Report:
    """The report of ``table`` from the runs under ``runs_dir`` (missing runs marked, never an error)."""
    table = TABLES.get(table) if isinstance(table, str) else table
    results = read_results(table, runs_dir)
    cells = {(c.row, c.column): c.run.name for c in table.cells}
    rows: list[list[Value]] = []
    any_tuned = any_seeds = False
    for row in table.rows:
        ours, ours_label = None, "ours"
        if any(r == row for r, _ in cells):
            found = {col: results.get(cells[(row, col)]) if (row, col) in cells else None for col in table.columns}
            by_column = {col: None if value is None else value[0] for col, value in found.items()}
            by_column.update({a.label: _mean([by_column[c] for c in a.columns]) for a in table.aggregates})
            ours = [by_column[col] for col in table.display]
            spreads = {col: value[2] for col, value in found.items() if value is not None and value[2] is not None}
            any_seeds |= bool(spreads)
            ours_label = _tuned_label([col for col, value in found.items() if value is not None and value[1]],
                                      [col for col, value in found.items() if value is not None])
            any_tuned |= ours_label != "ours"
        paper, other_backbone = None, None
        if table.published is not None and row in table.published.rows:
            paper = [table.published.value(row, col) for col in table.display]
            other_backbone = table.published.backbones.get(row)
        if paper is not None:
            source = "paper" if other_backbone is None else f"paper ({other_backbone})"
            rows.append([row, source, *(NOT_PUBLISHED if v is None else v for v in paper)])
        if ours is not None:
            rows.append([row, ours_label, *(MISSING if v is None else spreads[col].format(DIGITS) if col in spreads
                                            else v for col, v in zip(table.display, ours, strict=True))])
        if paper is not None and ours is not None and other_backbone is None:
            rows.append([row, "ours - paper", *_differences(ours, paper)])
    notes = [PROTOCOL_NOTE, f"{MISSING}: run missing or unfinished under {runs_dir}; blank: not published"]
    if any_tuned:
        notes.append(TUNED_NOTE)
    if any_seeds:
        notes.append(SEEDS_NOTE)
    if table.published is not None:
        if table.published.backbones:
            notes.append(f"paper (BACKBONE): published on another backbone than this table's; ours run on this "
                         f"table's, so no difference is shown ({', '.join(table.published.backbones)})")
        notes += list(table.published.notes)
    notes += list(table.notes)
    return Report(table.name, table.title, [table.row_header, "source", *table.display], rows, notes,
                  len(results), len(table.runs()))


def _tuned_label(tuned: list[str], present: list[str]) -> str:
    """``ours``, ``ours (tuned)`` when every present cell of the row is tuned, else ``ours (tuned: A, B)``."""
    if not tuned:
        return "ours"
    return "ours (tuned)" if tuned == present else f"ours (tuned: {', '.join(tuned)})"


def _differences(ours: list[float | None], paper: list[float | None]) -> list[Value]:
    out: list[Value] = []
    for mine, theirs in zip(ours, paper, strict=True):
        if theirs is None:
            out.append(NOT_PUBLISHED)
        elif mine is None:
            out.append(MISSING)
        else:
            out.append(round(mine - theirs, 2))
    return out


def tables_with_results(runs_dir: Path) -> list[str]:
    """The paper's tables that have at least one finished run under ``runs_dir``.

    Raises:
        UsageError: ``runs_dir`` does not exist or holds no finished run of any table.
    """
    if not runs_dir.is_dir():
        raise UsageError(f"runs folder {runs_dir} does not exist; pass the --runs folder of insvp reproduce")
    names = [name for name in PAPER_TABLES if read_results(TABLES.get(name), runs_dir)]
    if not names:
        raise UsageError(f"no finished run of {', '.join(PAPER_TABLES)} under {runs_dir}; "
                         "name a table with --table to see it with every run missing")
    return names


def render(report: Report, fmt: str) -> str:
    """``report`` as Markdown (heading, table, notes), CSV (raw numbers) or a LaTeX booktabs tabular."""
    if fmt == "markdown":
        notes = "".join(f"- {note}\n" for note in report.notes)
        return f"### {report.title}\n\n{markdown_table(report.headers, report.rows, DIGITS)}\n{notes}"
    if fmt == "csv":
        return csv_table(report.headers, report.rows)
    if fmt == "latex":
        comments = "".join(f"% {note}\n" for note in report.notes)
        return f"% {report.title}\n{latex_table(report.headers, report.rows, DIGITS)}{comments}"
    raise UsageError(f"--format: {fmt!r} is not valid; valid: {', '.join(FORMATS)}")
