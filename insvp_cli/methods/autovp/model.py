"""The ``autovp`` method's model (see the package docstring)."""

from __future__ import annotations

from ..label_mapping import LabelMappedMethod


class AutoVP(LabelMappedMethod):
    """The scaled image and its frame under ``autovp.``; the output mapping is ``head`` (FullyMap) or
    ``autovp.mapping`` (FreqMap / IterMap)."""

    prefix = "autovp"
