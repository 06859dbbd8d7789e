"""A Griffe extension for mkdocstrings: the project's reStructuredText inline markup read as Markdown.

Loaded by path from mkdocs.yml (``extensions: [docs/generate/griffe_rst.py]``); it rewrites each docstring with
:func:`generate.rst.markdown` before mkdocstrings parses its Google-style sections.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import griffe

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # docs/, where the generate package lives

from generate.rst import markdown  # noqa: E402


class ReSTMarkup(griffe.Extension):
    """Every docstring's double backticks, roles, ``::`` blocks and simple tables as Markdown."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value).rstrip("\n")
