"""VPTConfig: the hyper-parameters of the ``vpt`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from ...config.coerce import bounded
from ...config.limits import MAX_TOKENS
from ...config.protocols import VPT_PROMPT_LRS, Protocol, vpt_protocol
from ...config.schema import MethodConfig


@dataclass
class VPTConfig(MethodConfig):
    """VPT hyper-parameters.

    Attributes:
        num_tokens: prompt tokens per prompted block (the paper searches 1 to 200).
        deep: VPT-deep (prompts before every block) instead of VPT-shallow (before the first only).
        dropout: dropout on the prompt tokens (VPT's code defaults to 0.0).
        prompt_weight_decay: weight decay on the prompt tokens too, as VPT's code (SGD, one decay for every
            tensor but the head's bias); ``False`` exempts them, as prompt tokens usually are.
    """

    name: str = "vpt"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"VPT": ()}
    published: ClassVar[Protocol] = vpt_protocol("prompt", 128, 0.1, VPT_PROMPT_LRS, dropout=0.0,
                                                  prompt_weight_decay=True)
    num_tokens: int = bounded(10, ge=1, le=MAX_TOKENS)
    deep: bool = True
    dropout: float = bounded(0.1, ge=0, lt=1)
    prompt_weight_decay: bool = False
