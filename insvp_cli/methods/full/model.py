"""The ``full`` method's model (see the package docstring)."""

from __future__ import annotations

from ..base import Method


class Full(Method):
    """The whole backbone and the head train; the backbone follows train/eval mode (dropout, drop-path)."""

    def trainable_patterns(self) -> tuple[str, ...]:
        return ("backbone.*", "head.*")

    def no_weight_decay(self) -> set[str]:
        """The backbone's own exemptions (timm: position embedding, class and register tokens)."""
        names = dict(self.backbone.named_parameters())
        own = getattr(self.backbone, "no_weight_decay", set)()
        return {f"backbone.{n}" for n in own if n in names}
