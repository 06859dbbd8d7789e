"""The ``insvp`` command line: one module per command, each a thin layer over one core function.

Importing a module registers its commands; the import order below is the order ``insvp --help`` lists them.
"""

from . import (  # noqa: F401, I001
    train, predict, export, serve, compare, quickstart, sweep, reproduce, report, params, figures, data, convert,
    recipes,
)
from .app import app, main, run

__all__ = ["app", "main", "run"]
