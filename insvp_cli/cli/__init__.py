"""The ``insvp`` command line: one module per command, each a thin layer over one core function."""

from . import compare, convert, data, figures, params, train  # noqa: F401  (each module registers its commands)
from .app import app, main

__all__ = ["app", "main"]
