"""The project's docstrings as Markdown.

The docstrings are Google style with reStructuredText inline markup, as Sphinx reads them: ````code```` in double
backticks, cross-references as roles (``:func:`~insvp_cli.runs.trained.load_model```), literal blocks introduced by
``::`` and simple ``=====`` tables. MkDocs reads Markdown, where the same text would show the backticks and colons
as they are; :func:`markdown` rewrites just those constructs and leaves the rest of the text alone.
"""

from __future__ import annotations

import inspect
import re

# :func:`name`, :meth:`~a.b.c`, :py:class:`text <target>`
_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|exc|obj|const|ref):`(~?)([^`]+)`")
_LITERAL = re.compile(r"``(.+?)``")
_TABLE_RULE = re.compile(r"^\s*=+( +=+)+\s*$")


def _role(match: re.Match) -> str:
    short, target = match.group(1), match.group(2).strip()
    labelled = re.fullmatch(r"(.+?)\s*<(.+)>", target)
    if labelled:
        return labelled.group(1)
    if short:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def inline(text: str) -> str:
    """Inline markup only: roles and double-backtick literals become Markdown code."""
    return _LITERAL.sub(lambda m: f"`{m.group(1)}`", _ROLE.sub(_role, text))


def table(block: list[str]) -> list[str]:
    """A reST simple table (rule, header, rule, rows, rule) as a Markdown table; a line whose first cell is blank
    continues the row above, as in reST."""
    starts = [m.start() for m in re.finditer(r"=+", block[0])]
    rows: list[list[str]] = []
    for line in (line for line in block[1:] if not _TABLE_RULE.match(line)):
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        if rows and not cells[0]:
            rows[-1] = [f"{above} {cell}".strip() for above, cell in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    header, *body = ([inline(cell).replace("|", "\\|") for cell in row] for row in rows)
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header), *(f"| {' | '.join(row)} |" for row in body)]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def markdown(doc: str | None) -> str:
    """A docstring (or a part of one) as Markdown: inline markup becomes Markdown code, ``::`` literal blocks code
    blocks, simple tables Markdown tables, and a list gets the blank line before it that Markdown needs."""
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i, in_list = 0, False
    while i < len(lines):
        line = lines[i]
        if _TABLE_RULE.match(line):  # a simple table: top rule, header, rule, rows, bottom rule
            end, rules = i + 1, 1
            while end < len(lines) and rules < 3:
                rules += bool(_TABLE_RULE.match(lines[end]))
                end += 1
            out += ["", *table(lines[i:end]), ""]
            i, in_list = end, False
            continue
        if line.rstrip().endswith("::"):  # a literal block follows: the indented lines after a blank one
            text = line.rstrip()[:-2].rstrip()
            if text:
                out.append(inline(text) + ":")
            base, block, i = _indent(line), [], i + 1
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["", "```text", *inspect.cleandoc("\n".join(block)).splitlines(), "```", ""]
            in_list = False
            continue
        item = line.lstrip().startswith("- ")
        if item and not in_list and out and out[-1].strip():
            out.append("")  # Markdown starts a list only after a blank line
        in_list = (in_list or item) and bool(line.strip())
        out.append(inline(line))
        i += 1
    return "\n".join(out).strip() + "\n"
