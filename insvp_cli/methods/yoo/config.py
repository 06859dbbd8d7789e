"""YooConfig: the hyper-parameters of the ``yoo`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MethodConfig, bounded


@dataclass
class YooConfig(MethodConfig):
    """Gated prompt tuning hyper-parameters.

    Attributes:
        num_tokens: prompt tokens inserted after the class token.
        gate_init: the gate logits start at ``-gate_init`` (gates ``sigmoid(-gate_init)``, near closed).
        temperature: learn a per-block attention temperature (adaptive attention shaping).
        dropout: dropout on the prompt tokens.
    """

    name: str = "yoo"
    num_tokens: int = bounded(100, ge=1)
    gate_init: float = 5.0
    temperature: bool = True
    dropout: float = bounded(0.1, ge=0, lt=1)
