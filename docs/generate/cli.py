"""The command reference: every command's ``--help``, rendered by the Typer app itself as a user sees it.

The help is rendered in this process by the entry point the ``insvp`` script runs (``insvp_cli.cli.run``, the app with
its own Command and Group classes), at a fixed terminal width, so the page reads as ``COLUMNS=100 insvp CMD --help``
prints; ``tests/test_docs.py`` compares the two.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

WIDTH = 100  # the terminal width the reference is rendered at (COLUMNS)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours, where the environment forces a terminal (CI)


def plain(text: str) -> str:
    """Terminal output as text: no colour codes, no trailing blanks on a line, no blank lines around it."""
    return "\n".join(line.rstrip() for line in _ANSI.sub("", text).splitlines()).strip("\n") + "\n"


def commands() -> list[tuple[tuple[str, ...], Any]]:
    """``((), insvp)`` itself, then every command as ``(path, click command)`` in the order ``insvp --help`` lists
    them, a group's sub-commands after it (``("data",)``, ``("data", "list")``, ...)."""
    from typer.main import get_command

    from insvp_cli.cli import app

    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        found.append((path, command))
        if hasattr(command, "list_commands"):  # a group (of typer's bundled click, not the click package)
            for name in command.list_commands(None):
                walk(command.get_command(None, name), (*path, name))

    walk(get_command(app), ())
    return found


def help_text(path: tuple[str, ...], width: int = WIDTH) -> str:
    """What ``insvp PATH --help`` prints on a terminal ``width`` columns wide (:func:`plain`): the script's own entry
    point run in this process, with the terminal width where rich and click read it (``COLUMNS``)."""
    from insvp_cli.cli import run

    out, saved = io.StringIO(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        with contextlib.redirect_stdout(out):
            code = run([*path, "--help"])
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    if code != 0:
        raise RuntimeError(f"insvp {' '.join(path)} --help exited {code}: {out.getvalue()}")
    return plain(out.getvalue())


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(("insvp", *path))


def reference_page() -> str:
    """The Markdown of the command-line reference page: one section per command, its help as a text block."""
    found = commands()
    lines = [
        "# Command-line reference",
        "",
        "Every command's `--help`, generated from the command line itself when the site is built (at",
        f"`COLUMNS={WIDTH}`), so it is what `insvp COMMAND --help` prints for this version. The guide's pages say",
        "what the commands are for; exit codes are on [Training and runs](../training.md#exit-codes).",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for path, command in found[1:]:
        summary = (command.help or "").strip().split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        lines.append(f"| [`insvp {' '.join(path)}`](#{_anchor(path)}) | {summary} |")
    for path, _ in found:
        heading = "#" * (2 + max(len(path) - 1, 0))
        lines += ["", f"{heading} `{' '.join(('insvp', *path))}` {{#{_anchor(path)}}}", "", "```text",
                  help_text(path).rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"
