"""The ``insvp`` command line: one module per command, each a thin layer over one core function."""

from . import data, params  # noqa: F401  (register the commands)
from .app import app, main

__all__ = ["app", "main"]
