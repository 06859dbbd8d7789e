"""MkDocs hooks (``hooks:`` in mkdocs.yml): the pages made from the code, added when the site is built.

- ``reference/cli.md``: every command's ``--help`` (:mod:`generate.cli`);
- ``methods/<name>.md``: one page per registered method (:mod:`generate.methods`), listed in the navigation's
  "Methods" section after its hand-written pages, so that a new method needs no edit of mkdocs.yml.

Nothing is written into ``docs/``: the pages exist only in the built site (and in ``mkdocs serve``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the generators next to this file

from generate import cli, methods  # noqa: E402

METHODS_SECTION = "Methods"  # the navigation section that lists the method pages
CLI_PAGE = "reference/cli.md"


def on_config(config, **kwargs):
    """Append one navigation entry per registered method to the "Methods" section."""
    section = next((item for item in config["nav"] or [] if isinstance(item, dict) and METHODS_SECTION in item),
                   None)
    if section is None:
        raise ValueError(f"mkdocs.yml: the nav has no {METHODS_SECTION!r} section to list the method pages in")
    entries = section[METHODS_SECTION]
    listed = {next(iter(entry.values())) for entry in entries if isinstance(entry, dict)}
    entries += [{name: methods.page_path(name)} for name in methods.method_names()
                if methods.page_path(name) not in listed]
    return config


def on_files(files: Files, config, **kwargs) -> Files:
    """Add the generated pages to the site's files."""
    pages = {CLI_PAGE: cli.reference_page(), **methods.pages()}
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
