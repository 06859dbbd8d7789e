"""Layers that several methods share: VPT's prompt initialisation, the bottleneck of adapters, and timm's
plain pre-norm block re-composed so that a method can insert a module in it (adapter, AdaptFormer).
"""

from __future__ import annotations

import math

import torch
from timm.models.vision_transformer import Block
from torch import nn

from ..backbone.vit import blocks_with_prompts, embed_tokens, pool
from ..common.errors import UsageError
from ..config.schema import MethodConfig
from .base import _ACTIVATIONS, Method


def xavier_prompt(*shape: int, patch: int) -> nn.Parameter:
    """Prompt tokens of ``shape`` (width last), xavier-uniform as if they came out of the ``(3 * patch^2 -> width)``
    patch projection (VPT's init)."""
    tokens = nn.Parameter(torch.empty(*shape))
    bound = math.sqrt(6.0 / float(3 * patch * patch + shape[-1]))
    nn.init.uniform_(tokens, -bound, bound)
    return tokens


class RecomposedBlocks(Method):
    """A method that runs timm's plain ``Block``s itself, re-composed from their sub-modules (adapters).

    Subclasses implement :meth:`block`; the backbone's state dict stays untouched because their own
    modules live under their prefix.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: MethodConfig):
        super().__init__(backbone, num_classes, cfg)
        require_plain_blocks(backbone, cfg.name)

    def block(self, j: int, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Block ``j`` on tokens ``(B, T, D)``."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return pool(self.backbone, blocks_with_prompts(self.backbone, embed_tokens(self.backbone, x),
                                                       run_block=self.block))


def require_plain_blocks(backbone: nn.Module, method: str) -> None:
    """Check that every block runs timm's pre-norm ``Block.forward``, which a method re-composes from its parts.

    A method that calls ``norm1, attn, ls1, drop_path1, norm2, mlp, ls2, drop_path2`` itself reproduces
    exactly that forward; any other block type (post-norm, parallel branches) would silently change.

    Raises:
        UsageError: the backbone has no ``blocks`` or a block of another type.
    """
    blocks = getattr(backbone, "blocks", None)
    if blocks is None:
        raise UsageError(f"method {method} needs a ViT with `blocks`; {type(backbone).__name__} has none")
    for j, block in enumerate(blocks):
        if type(block).forward is not Block.forward:
            raise UsageError(
                f"method {method} supports timm's pre-norm ViT Block only; block {j} of "
                f"{type(backbone).__name__} is a {type(block).__name__}"
            )


BOTTLENECK_INITS = ("lora", "zeros", "houlsby")


class Bottleneck(nn.Module):
    """``d -> r -> d``: down-projection, non-linearity, dropout, up-projection.

    Initialisations (``init``), each from the work that uses it:

    - ``lora`` (AdaptFormer's code): the down-projection keeps PyTorch's Kaiming-uniform weight with a
      zero bias, the up-projection starts at zero; outputs zeros at first, and every weight learns.
    - ``zeros`` (VPT's Adapter baseline): both projections, weights and biases, start at zero. Outputs
      zeros, and with zero inputs to the up-projection and zero weights behind the down-projection no
      weight ever gets a gradient: only the up-projection's bias learns (what VPT's comparison trained).
    - ``houlsby`` (Houlsby et al. §3.6, "near-identity"): weights from a zero-mean normal with std 1e-2
      truncated at two standard deviations, zero biases.

    Parameters: ``2 d r + r + d``.

    Args:
        dim: input and output width ``d``.
        hidden: bottleneck width ``r``.
        activation: ``relu`` or ``gelu``.
        dropout: dropout on the bottleneck activations.
        init: ``lora``, ``zeros`` or ``houlsby``.
    """

    def __init__(self, dim: int, hidden: int, activation: str = "relu", dropout: float = 0.0, init: str = "lora"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {activation!r}; valid: {', '.join(_ACTIVATIONS)}")
        if init not in BOTTLENECK_INITS:
            raise ValueError(f"init {init!r}; valid: {', '.join(BOTTLENECK_INITS)}")
        self.down = nn.Linear(dim, hidden)
        self.act = _ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.bias)
        if init == "houlsby":
            for layer in (self.down, self.up):
                nn.init.trunc_normal_(layer.weight, std=1e-2, a=-2e-2, b=2e-2)
        else:
            nn.init.zeros_(self.up.weight)
            if init == "zeros":
                nn.init.zeros_(self.down.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.drop(self.act(self.down(x))))
