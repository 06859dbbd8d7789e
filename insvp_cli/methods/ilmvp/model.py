"""The ``ilmvp`` method's model (see the package docstring)."""

from __future__ import annotations

from ..label_mapping import LabelMappedMethod


class ILMVP(LabelMappedMethod):
    """The expansive prompt and the iterative frequency label mapping under ``ilmvp.``; no trained head."""

    prefix = "ilmvp"
