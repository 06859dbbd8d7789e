"""The ``insvp`` command line: one module per command, each a thin layer over one core function."""

# each module registers its commands on the app
from . import compare, convert, data, figures, params, report, reproduce, sweep, train  # noqa: F401
from .app import app, main

__all__ = ["app", "main"]
