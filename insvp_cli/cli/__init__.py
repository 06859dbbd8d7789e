"""The ``insvp`` command line: one module per command, each a thin layer over one core function."""

from . import params  # noqa: F401  (registers the command)
from .app import app, main

__all__ = ["app", "main"]
