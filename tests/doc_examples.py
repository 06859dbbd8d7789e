"""The checked examples of the documentation: fenced blocks under ``<!-- checked -->`` in ``docs/**/*.md``.

A page marks an example as checked by an HTML comment on the line before its fence (invisible on the site)::

    <!-- checked -->
    ```console
    $ insvp recipes
    cifar10
    ...
    ```

A ``console`` block holds commands (``$ insvp ...``; only the ``insvp`` script, no shell) each followed by what it
prints, stdout and stderr together. A ``python`` block is run as a script; what it prints is the ``text`` block that
follows it. Options after ``checked:``, space-separated:

- ``in=quickstart``: run where ``insvp quickstart`` has run (``runs/quickstart``), next to ``digit-8.png`` and
  ``photos/`` (that digit and a text file), as the page says; otherwise in an empty folder.
- ``stdout``: compare stdout only (the progress a command writes to stderr is not shown).
- ``tolerance=X``: a number with a decimal point may differ from the one shown by up to ``X`` (what varies with
  the CPU's float rounding: accuracies after training); other numbers and all text must match.
- ``vary="HEADER"``: the table column under ``HEADER`` (a rich or Markdown table) is not compared (timings).

Before comparing, colour codes, trailing blanks and blank lines around the output are dropped, and the folder the
package is installed in reads ``...`` (``shipped in .../insvp_cli/recipes``).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
from generate.cli import plain  # noqa: E402  (what a terminal shows: no colour codes, no trailing blanks)

MARK = re.compile(r"^<!-- checked(?::\s*(.*?))?\s*-->$")
FENCE = re.compile(r"^```(\w*)\s*$")
_NUMBER = re.compile(r"[-+]?\d[\d,]*\.\d+")
_CELL_SEPARATORS = re.compile(r"[│┃|]")


@dataclass
class Example:
    """One checked block: where it is, its options, and its runs (a command or a script, and what it prints)."""

    page: Path
    line: int
    kind: str
    options: dict[str, str]
    runs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.page.name}:{self.line}"


def _fenced(lines: list[str], start: int) -> tuple[str, list[str], int]:
    """The fenced block opening at ``lines[start]``: its info string, its lines, the index after its closing fence."""
    opening = FENCE.match(lines[start])
    if not opening:
        raise ValueError(f"line {start + 1}: a checked example is a fenced block right after its mark")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() == "```"), None)
    if end is None:
        raise ValueError(f"line {start + 1}: the fenced block is not closed")
    return opening.group(1), lines[start + 1:end], end + 1


def _console_runs(body: list[str]) -> list[tuple[str, str]]:
    runs: list[tuple[str, list[str]]] = []
    continued = False
    for line in body:
        if line.startswith("$ ") or continued:
            command = line[2:] if not continued else line.strip()
            if continued:
                runs[-1] = (runs[-1][0] + " " + command.rstrip("\\").strip(), runs[-1][1])
            else:
                runs.append((command.rstrip("\\").strip(), []))
            continued = line.endswith("\\")
        elif runs:
            runs[-1][1].append(line)
        else:
            raise ValueError(f"output before any command: {line!r}")
    return [(command, "\n".join(output)) for command, output in runs]


def collect(page: Path) -> list[Example]:
    """Every checked example of a Markdown page.

    Raises:
        ValueError: a mark without its block, or a block that cannot be checked (naming the page and line).
    """
    try:
        return _collect(page)
    except ValueError as exc:
        raise ValueError(f"{page}: {exc}") from None


def _collect(page: Path) -> list[Example]:
    lines = page.read_text().splitlines()
    examples = []
    fence = ""  # the backticks of the fenced block around this line: a mark inside one is shown, not meant
    for i, line in enumerate(lines):
        ticks = re.match(r"^(`{3,})", line)
        if ticks and (not fence or ticks.group(1) == fence and not line.strip("`").strip()):
            fence = "" if fence else ticks.group(1)
        mark = MARK.match(line.strip())
        if fence or not mark:
            continue
        options = dict(re.findall(r'(\w+)(?:=("[^"]*"|\S+))?', mark.group(1) or ""))
        options = {key: value.strip('"') for key, value in options.items()}
        kind, body, after = _fenced(lines, i + 1)
        example = Example(page, i + 2, kind, options)
        if kind == "console":
            example.runs = _console_runs(body)
        elif kind == "python":
            following = next((j for j in range(after, len(lines)) if lines[j].startswith("```")), len(lines) - 1)
            output_kind, output, _ = _fenced(lines, following)
            if output_kind != "text":
                raise ValueError(f"{example.name}: a checked python block is followed by a text block of its output")
            example.runs = [("\n".join(body), "\n".join(output))]
        else:
            raise ValueError(f"{example.name}: checked blocks are console or python, not {kind!r}")
        examples.append(example)
    return examples


def command_args(command: str, insvp: Path) -> list[str]:
    """A shown command as the arguments of the installed script."""
    args = shlex.split(command)
    if args[0] != "insvp":
        raise ValueError(f"checked commands run the insvp script only: {command!r}")
    return [str(insvp), *args[1:]]


def normalise(text: str, installed: Path) -> list[str]:
    """Printed text as lines to compare: no colour codes or trailing blanks, no blank lines around it, and the
    installation folder as ``...``."""
    return plain(text.replace(str(installed), "...")).splitlines()


def _cells(line: str) -> list[str] | None:
    return [c.strip() for c in _CELL_SEPARATORS.split(line)] if _CELL_SEPARATORS.search(line) else None


def _same(shown: str, actual: str, tolerance: float) -> bool:
    """Equal text, and equal numbers (those with a decimal point within ``tolerance``)."""
    if _NUMBER.split(shown) != _NUMBER.split(actual):
        return False
    pairs = zip(_NUMBER.findall(shown), _NUMBER.findall(actual), strict=True)
    return all(abs(float(a.replace(",", "")) - float(b.replace(",", ""))) <= tolerance for a, b in pairs)


def differences(shown: str, actual: list[str], options: dict[str, str]) -> list[str]:
    """Where ``actual`` (normalised lines) differs from the ``shown`` output, as readable lines (none: it matches)."""
    expected = [line.rstrip() for line in shown.strip("\n").splitlines()]
    if len(expected) != len(actual):
        return [f"{len(actual)} lines printed, {len(expected)} shown"]
    tolerance = float(options.get("tolerance", 0))
    skipped: int | None = None  # the column of cells not compared, once its header has been seen
    found = []
    for number, (want, got) in enumerate(zip(expected, actual, strict=True), 1):
        want_cells, got_cells = _cells(want), _cells(got)
        if "vary" in options and got_cells and options["vary"] in got_cells:
            skipped = got_cells.index(options["vary"])
        if skipped is not None and want_cells and got_cells and len(want_cells) == len(got_cells) > skipped:
            want_cells[skipped] = got_cells[skipped] = ""
            same = all(_same(w, g, tolerance) for w, g in zip(want_cells, got_cells, strict=True))
        else:
            same = _same(want, got, tolerance)
        if not same:
            found.append(f"line {number}: shown {want!r}, printed {got!r}")
    return found
