"""The protocol every method follows, and the ViT pieces that several methods share.

Shared pieces: the forward with prompt tokens (InsVP, VPT), and for methods that change what happens
inside a block (adapter, AdaptFormer) a check that the blocks are timm's plain pre-norm ``Block`` and
the zero-initialised bottleneck they insert.

A method wraps a frozen timm backbone (never a fork of timm's model code) and owns a classification
head. Its trainable parameters are found mechanically from name patterns, so the engine needs no
``if method == ...`` branch anywhere.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import torch
from timm.models.vision_transformer import Block
from torch import nn

from ..config import MethodConfig
from ..errors import UsageError


class Method(nn.Module):
    """Base class: a frozen ``backbone`` plus a trainable ``head`` plus the method's own parameters.

    Subclasses set :attr:`prefix` (the name under which their own modules live) and implement
    :meth:`forward_features`. :meth:`trainable_patterns` lists ``fnmatch`` patterns over
    ``named_parameters()``; the builder sets ``requires_grad`` from them, and checkpoints store
    exactly those tensors.

    Args:
        backbone: a timm model created with ``num_classes=0``.
        num_classes: outputs of the head.
        cfg: the method's config dataclass.
    """

    prefix: str = ""

    def __init__(self, backbone: nn.Module, num_classes: int, cfg: MethodConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.num_classes = num_classes
        self.head = nn.Linear(backbone.num_features, num_classes)

    # ---- the protocol -----------------------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(B, 3, H, W)`` -> pooled pre-logit features ``(B, D)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(B, 3, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self.forward_features(x))

    def trainable_patterns(self) -> tuple[str, ...]:
        """``fnmatch`` patterns of the parameter names that train (default: the method's prefix and the head)."""
        own = (f"{self.prefix}.*",) if self.prefix else ()
        return (*own, "head.*")

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay besides biases and norms (e.g. prompt tokens)."""
        return set()

    # ---- mechanics shared by all methods ----------------------------------------------------------

    def is_trainable_name(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.trainable_patterns())

    def apply_trainable(self) -> None:
        """Set ``requires_grad`` on exactly the parameters that :meth:`trainable_patterns` select."""
        for name, param in self.named_parameters():
            param.requires_grad_(self.is_trainable_name(name))

    @property
    def backbone_trains(self) -> bool:
        return any(p.requires_grad for p in self.backbone.parameters())

    def train(self, mode: bool = True) -> Method:
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode (no dropout, no drop-path)."""
        super().train(mode)
        if not self.backbone_trains:
            self.backbone.eval()
        return self

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Exactly the tensors that train (what a checkpoint holds); buffers of trained modules included."""
        state = self.state_dict()
        return {k: v for k, v in state.items() if self.is_trainable_name(k)}

    def component_params(self) -> dict[str, int]:
        """Parameter counts per component: the method's own sub-modules, the head, the backbone."""
        counts: dict[str, int] = {}
        for name, param in self.named_parameters():
            parts = name.split(".")
            key = ".".join(parts[:2]) if parts[0] == self.prefix and len(parts) > 1 else parts[0]
            counts[key] = counts.get(key, 0) + param.numel()
        return counts


# --------------------------------------------------------------------------------------------------
# The ViT forward with prompt tokens (VPT-deep style), used by InsVP and VPT


def embed_tokens(backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Images ``(B, 3, H, W)`` -> tokens ``(B, prefix + N, D)``, exactly as timm's ``forward_features`` begins."""
    x = backbone.patch_embed(x)
    x = backbone._pos_embed(x)
    x = backbone.patch_drop(x)
    return backbone.norm_pre(x)


def blocks_with_prompts(
    backbone: nn.Module, x: torch.Tensor, prompts: Sequence[torch.Tensor] | torch.Tensor = ()
) -> torch.Tensor:
    """Run the blocks with prompt tokens inserted after the prefix (class/register) tokens.

    Block ``j < len(prompts)`` gets its own ``prompts[j]`` (``(B, P, D)``), replacing the outputs of the
    previous block's prompts; after the last prompted block the prompt outputs travel on through the
    remaining blocks, as in VPT-deep. They are dropped before the final norm, so the model's own pooling
    (class token or average) sees exactly the tokens it would without prompts.

    Args:
        backbone: a timm VisionTransformer.
        x: tokens ``(B, prefix + N, D)`` from :func:`embed_tokens`.
        prompts: per-block prompt tokens; empty = timm's plain forward.

    Returns:
        Normalised tokens ``(B, prefix + N, D)``.
    """
    npt = backbone.num_prefix_tokens
    num_prompt = 0
    for j, block in enumerate(backbone.blocks):
        if j < len(prompts):
            p = prompts[j]
            # (B, prefix + P_prev + N, D) -> (B, prefix + P + N, D)
            x = torch.cat([x[:, :npt], p.to(x.dtype), x[:, npt + num_prompt :]], dim=1)
            num_prompt = p.shape[1]
        x = block(x)
    if num_prompt:
        # (B, prefix + P + N, D) -> (B, prefix + N, D)
        x = torch.cat([x[:, :npt], x[:, npt + num_prompt :]], dim=1)
    return backbone.norm(x)


def pool(backbone: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B, T, D)`` -> pre-logit features ``(B, D)`` through the model's own pooling and ``fc_norm``."""
    return backbone.forward_head(tokens, pre_logits=True)


def patch_size(backbone: nn.Module) -> int:
    size = backbone.patch_embed.patch_size
    size = size if isinstance(size, int) else size[0]
    return int(size)


# --------------------------------------------------------------------------------------------------
# Inside the blocks: methods that add modules to each block call the block's own sub-modules


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
        x = embed_tokens(self.backbone, x)
        for j, block in enumerate(self.backbone.blocks):
            x = self.block(j, block, x)
        return pool(self.backbone, self.backbone.norm(x))


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


_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}


class Bottleneck(nn.Module):
    """``d -> r -> d``: down-projection, non-linearity, dropout, up-projection; outputs zeros at initialisation.

    The up-projection (weight and bias) starts at zero, so a model with bottlenecks added to its blocks
    starts exactly as the backbone. The down-projection keeps PyTorch's Kaiming-uniform weight with a
    zero bias (AdaptFormer's "lora" initialisation). Parameters: ``2 d r + r + d``.

    Args:
        dim: input and output width ``d``.
        hidden: bottleneck width ``r``.
        activation: ``relu`` or ``gelu``.
        dropout: dropout on the bottleneck activations.
    """

    def __init__(self, dim: int, hidden: int, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation {activation!r}; valid: {', '.join(_ACTIVATIONS)}")
        self.down = nn.Linear(dim, hidden)
        self.act = _ACTIVATIONS[activation]()
        self.drop = nn.Dropout(dropout)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.drop(self.act(self.down(x))))
