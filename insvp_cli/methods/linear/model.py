"""The ``linear`` method's model (see the package docstring)."""

from __future__ import annotations

from ..base import Method


class Linear(Method):
    """Only the classification head trains."""
