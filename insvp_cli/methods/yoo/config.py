"""YooConfig: the hyper-parameters of the ``yoo`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...config.coerce import bounded
from ...config.limits import MAX_FACTOR, MAX_TOKENS
from ...config.protocols import VPT_DECAY, VPT_SGD, Protocol
from ...config.schema import MethodConfig


@dataclass
class YooConfig(MethodConfig):
    """Gated prompt tuning hyper-parameters.

    Attributes:
        num_tokens: prompt tokens inserted after the class token.
        gate_init: the gate logits start at ``-gate_init`` (gates ``sigmoid(-gate_init)``, near closed).
        temperature: learn a per-block attention temperature (adaptive attention shaping).
        dropout: dropout on the prompt tokens.
        head_init: VPT's MLP head, as the authors' code (built on VPT's) trains (see
            :class:`~insvp_cli.config.schema.MethodConfig`).
    """

    name: str = "yoo"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"Yoo et al": ()}
    # built on VPT's code: its SGD solver without weight decay, lr 0.1 (its example command: batch 64, not scaled), 10
    # warm-up epochs of 100; no grid is published
    published: ClassVar[Protocol] = Protocol(
        source="ryongithub/GatedPromptTuning (VPT's solver, its example command); paper: SGD, momentum 0.9, lr 0.1, "
               "10 warm-up epochs",
        train={**VPT_SGD, "lr": 0.1, "weight_decay": 0.0}, method=VPT_DECAY,
    )
    num_tokens: int = bounded(100, ge=1, le=MAX_TOKENS)
    gate_init: float = bounded(5.0, ge=-MAX_FACTOR, le=MAX_FACTOR)
    temperature: bool = True
    dropout: float = bounded(0.1, ge=0, lt=1)
    head_init: Literal["torch", "vpt", "trunc_normal"] = "vpt"
