"""Pages of the documentation site made from the code itself, so that nothing is written twice.

- :mod:`.cli`: the command reference, every command's ``--help`` exactly as ``insvp CMD --help`` prints it.
- :mod:`.methods`: one page per registered method (``insvp_cli.methods.METHODS``): its docstrings, its
  ``method.*`` keys with their defaults and ranges, its published protocol and its rows of the paper's tables.
- :mod:`.rst`: the project's reStructuredText-flavoured docstrings (double backticks, ``:func:`` roles, ``::``
  literal blocks) as Markdown, for the method pages and for mkdocstrings (:mod:`.griffe_rst`).

``docs/hooks.py`` adds these pages to the site when MkDocs builds it; ``tests/test_docs.py`` checks them.
"""
