"""The ``insvp`` command line: one module per command, each a thin layer over one core function."""

from . import convert, data, params, quickstart, train  # noqa: F401  (each module registers its commands)
from .app import app, main

__all__ = ["app", "main"]
