"""The ``bias`` method's model (see the package docstring)."""

from __future__ import annotations

from ..base import Method


class Bias(Method):
    """Every backbone parameter whose name ends in ``bias`` trains, and the head.

    That is the biases of the patch embedding, of ``qkv``/``proj`` and ``fc1``/``fc2`` in each block, and of
    every LayerNorm (BitFit tunes all bias terms, normalisation biases included); the ``q_bias``/``v_bias``
    of BEiT-style attention match too.
    """

    def trainable_patterns(self) -> tuple[str, ...]:
        return ("backbone.*bias", "head.*")
