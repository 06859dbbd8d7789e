"""The ``insvp`` command line: one module per command, each a thin layer over one core function."""

# each module registers its commands on the app
from . import compare, convert, data, export, figures, params, predict, report, reproduce, train  # noqa: F401
from .app import app, main

__all__ = ["app", "main"]
