"""YooConfig: the hyper-parameters of the ``yoo`` method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import MethodConfig, bounded


@dataclass
class YooConfig(MethodConfig):
    """Gated prompt tuning hyper-parameters.

    Attributes:
        num_tokens: prompt tokens inserted after the class token.
        gate_init: the gate logits start at ``-gate_init`` (gates ``sigmoid(-gate_init)``, near closed).
        temperature: learn a per-block attention temperature (adaptive attention shaping).
        dropout: dropout on the prompt tokens.
        head_init: VPT's MLP head, as the authors' code (built on VPT's) trains (see
            :class:`~insvp_cli.config.MethodConfig`).
    """

    name: str = "yoo"
    num_tokens: int = bounded(100, ge=1)
    gate_init: float = 5.0
    temperature: bool = True
    dropout: float = bounded(0.1, ge=0, lt=1)
    head_init: Literal["torch", "vpt", "trunc_normal"] = "vpt"
