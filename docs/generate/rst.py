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


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def markdown(doc: str | None) -> str:
    """A docstring (or a part of one) as Markdown: inline markup, ``::`` literal blocks and simple tables become
    Markdown code, and a list gets the blank line before it that Markdown needs."""
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
            out += ["", "```text", *lines[i:end], "```", ""]
            i = end
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
            continue
        item = line.lstrip().startswith("- ")
        if item and not in_list and out and out[-1].strip():
            out.append("")  # Markdown starts a list only after a blank line
        in_list = (in_list or item) and bool(line.strip())
        out.append(inline(line))
        i += 1
    return "\n".join(out).strip() + "\n"
