"""The ``insvp`` command line: one module per command, each a thin layer over one core function.

Importing a module registers its commands; the import order below is the order ``insvp --help`` lists them.
"""

from . import train, predict, export, serve, compare, sweep, reproduce, report, params, figures, data, convert  # noqa: F401, I001
from .app import app, main, run

__all__ = ["app", "main", "run"]
