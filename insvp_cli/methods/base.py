"""The protocol every method follows, its optional hooks, and the block-level pieces adapter methods share.

A method wraps a frozen timm backbone (never a fork of timm's model code) and owns a classification
head. Its trainable parameters are found mechanically from name patterns, so the engine needs no
``if method == ...`` branch anywhere. What figures, exports and the training loop may ask of a method
beyond ``forward`` is an explicit hook of :class:`Method` with a default that fits methods without it:

========================  =====================================================  ===============================
hook                      what it gives                                          default
========================  =====================================================  ===============================
``image_prompts(x)``      what the method adds to the image (Grad-CAM figures)   ``None``: nothing
``embed(x, name)``        a per-image vector to draw (t-SNE); names from the     ``features``: ``forward_features``
                          config's ``embeddings()``
``cam_layer()``           the layer whose activations make the CAM               the backbone's last block norm
``prepare(data)``         a look at the training split before the first epoch    nothing
                          (clustering, label mappings)
``on_epoch_start(e, d)``  work before each epoch (iterative label mappings,       nothing
                          pruning)
``restart_epochs()``      epochs (from the config alone) at which training       ``()``: one stage
                          starts over: the engine clears the optimizer state,
                          restarts warm-up and cosine over the epochs up to the
                          next restart, and selects the best epoch anew
``decays(name, p)``       whether a trainable tensor gets weight decay           not 1-D tensors (biases, norms)
                                                                                 nor ``no_weight_decay()`` names
``loss(logits, y, c)``    the training loss (auxiliary terms), given the         ``c(logits, y)``
                          auxiliary outputs of the same forward (``**aux``)
``features_with_aux(x)``  features and auxiliary outputs for ``loss``            ``forward_features``, none
``logits(features)``      features -> logits                                     the head
========================  =====================================================  ===============================

The classification head follows ``cfg.head_init`` and ``cfg.head_norm`` (:func:`make_head`), so every
method can start its head as the work it stands for did.

Blocks run one way: :func:`~insvp_cli.backbone.vit.blocks_with_prompts` (prompt tokens inserted after the prefix
tokens, dropped before the final norm), with ``run_block(j, block, tokens)`` for a method that changes what
happens in or around a block: adapter and AdaptFormer (:class:`RecomposedBlocks`, re-composing timm's plain
pre-norm ``Block`` from its sub-modules to insert a :class:`Bottleneck`; :func:`require_plain_blocks` checks that
they can), E2VPT (key-value prompts in the attention), Yoo et al (gates and temperatures) and TransHP (its
prototypes through chosen blocks).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..backbone.swin import is_swin
from ..backbone.vit import pool
from ..common.errors import UsageError
from ..config.schema import MethodConfig
from ..runtime.distributed import DistInfo, gather_rows, sum_over_ranks
from ..runtime.precision import Precision


@dataclass
class ImagePrompts:
    """What a method does to a batch of normalised images ``(B, 3, H, W)`` before the backbone sees them.

    Attributes:
        image: the input after the method's fixed, parameter-free preprocessing (InsVP's SimAM), else ``x``.
        prompt: what is added to ``image`` (InsVP's ``p_I``), ``(B, 3, H, W)``; ``None`` if nothing is.
        prompted: ``image + prompt``: what the backbone sees.
        parts: named components of ``prompt`` by their symbol (InsVP: ``p_g``, ``p_l``), for figures.
    """

    image: torch.Tensor
    prompt: torch.Tensor | None
    prompted: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class TrainingData:
    """What a method may look at before and during training: the training split only, never val or test.

    A pass over the split runs as training runs: under the run's autocast (:meth:`autocast`) and, under ``torchrun``,
    split over the processes: each loader yields this process's part, and :meth:`sum` / :meth:`gather` combine the
    parts (a method sums integer counts, which stay exact, or gathers per-image rows in the split's order).

    Attributes:
        loader: makes a loader over (this process's part of) the training split with the evaluation transform (no
            augmentation), in a fixed order, yielding ``(images, labels)``; built only when called.
        classes: the class names, ``classes[label]``.
        device: where the model lives.
        coarse_labels: the coarse class of each class (``coarse_labels[label]``) from the data's hierarchy, for
            methods whose config ``requires()`` one (TransHP); ``None`` for the others.
        augmented_loader: like ``loader``, but with the training transform (augmentation drawn anew on every
            pass), for methods that look at the images as training sees them (DAM-VP's clustering); ``None``:
            only ``loader`` is available.
        precision: the run's autocast.
        dist: the ``torchrun`` process group (one process by default).
    """

    loader: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]
    classes: list[str]
    device: torch.device
    coarse_labels: list[int] | None = None
    augmented_loader: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None
    precision: Precision = field(default_factory=lambda: Precision("cpu", None))
    dist: DistInfo = field(default_factory=DistInfo)

    def autocast(self):
        """The run's autocast, for the forward passes of a look at the data."""
        return self.precision.autocast()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes (in place), e.g. counts over each process's part of the split."""
        return sum_over_ranks(tensor, self.dist)

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Each process's rows ``(n_r, ...)`` of its part, concatenated: the whole split's rows in its order."""
        return gather_rows(rows, self.dist)


class Method(nn.Module):
    """Base class: a frozen ``backbone`` plus a trainable ``head`` plus the method's own parameters.

    Subclasses set :attr:`prefix` (the name under which their own modules live) and override
    :meth:`forward_features` when they change the backbone's forward. :meth:`trainable_patterns` lists
    ``fnmatch`` patterns over ``named_parameters()``; the builder sets ``requires_grad`` from them, and
    checkpoints store exactly those tensors (and the buffers under the same names).

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
        self.head = make_head(backbone.num_features, num_classes, cfg)

    # ---- the protocol -----------------------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``(B, 3, H, W)`` -> pooled pre-logit features ``(B, D)``; default: the backbone's own,
        of the prompted images when the method has :meth:`image_prompts` (input-space prompts: VP, DAM-VP, ...)."""
        prompts = self.image_prompts(x)
        return pool(self.backbone, self.backbone.forward_features(x if prompts is None else prompts.prompted))

    def features_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Features ``(B, D)`` and the auxiliary outputs of the same forward that :meth:`loss` needs (TransHP's
        coarse logits); default: :meth:`forward_features` and none."""
        return self.forward_features(x), {}

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``(B, D)`` -> logits ``(B, num_classes)``: the head by default."""
        return self.head(features)

    def forward(self, x: torch.Tensor, with_aux: bool = False):
        """Normalised images ``(B, 3, H, W)`` -> logits ``(B, num_classes)``; with ``with_aux`` (the training loop),
        ``(logits, aux)`` with the auxiliary outputs for :meth:`loss`. Through ``forward``, so that DDP and
        ``torch.compile`` wrappers see the whole computation."""
        features, aux = self.features_with_aux(x)
        logits = self.logits(features)
        return (logits, aux) if with_aux else logits

    def trainable_patterns(self) -> tuple[str, ...]:
        """``fnmatch`` patterns of the parameter names that train (default: the method's prefix and the head)."""
        own = (f"{self.prefix}.*",) if self.prefix else ()
        return (*own, "head.*")

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay besides biases and norms (e.g. prompt tokens)."""
        return set()

    def decays(self, name: str, param: nn.Parameter) -> bool:
        """Whether the trainable parameter ``name`` gets weight decay (the optimizer builder asks).

        Default, as in timm and nanoGPT: not biases and norm weights (every 1-D tensor), nor the names in
        :meth:`no_weight_decay`. A method whose source decays everything overrides this. ``weight_decay_skip`` in
        the config (a published protocol's rule, e.g. VPT's solver) replaces the rule: everything decays but the
        tensors it matches.
        """
        if self.cfg.weight_decay_skip is not None:
            return not any(fnmatch.fnmatchcase(name, pattern) for pattern in self.cfg.weight_decay_skip)
        return param.ndim > 1 and name not in self.no_weight_decay()

    # ---- optional hooks (see the module docstring) ------------------------------------------------

    def image_prompts(self, x: torch.Tensor) -> ImagePrompts | None:
        """What the method adds to the images ``(B, 3, H, W)``; ``None`` for methods that add nothing."""
        return None

    def embed(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """A per-image vector ``(B, dim)`` named by ``cfg.embeddings()``: ``features`` are the head's input.

        Raises:
            UsageError: a name this method's config does not offer.
        """
        if name == "features":
            return self.forward_features(x)
        raise UsageError(f"method {self.cfg.name} has no embedding {name!r}; it has: "
                         f"{', '.join(self.cfg.embeddings())}")

    def cam_layer(self) -> nn.Module:
        """The layer whose activations and gradients make a class activation map.

        A ViT's last block ``norm1``: its patch tokens still reach the class token through the last
        attention, whereas after the final norm only the class token reaches the head. A Swin
        Transformer's final norm, whose ``(B, h, w, C)`` map holds image tokens only.
        """
        if is_swin(self.backbone):
            return self.backbone.norm
        blocks = getattr(self.backbone, "blocks", None)
        if blocks is None:
            raise UsageError(f"a class activation map needs a timm ViT or Swin Transformer; "
                             f"{type(self.backbone).__name__} is neither")
        return blocks[-1].norm1

    def prepare(self, data: TrainingData) -> None:
        """Called once before the first epoch of a new run (not on resume: what it computes must live in
        buffers under :attr:`prefix`, which checkpoints and the resume state carry)."""

    def on_epoch_start(self, epoch: int, data: TrainingData) -> None:
        """Called before every epoch (0-based), resumed ones included."""

    def restart_epochs(self) -> tuple[int, ...]:
        """0-based epochs, known from the config alone, at which training starts over (multi-stage methods).

        At each, after :meth:`on_epoch_start`, the engine clears the optimizer's state, runs the warm-up and
        cosine schedule again over the epochs up to the next restart (or the end), and forgets the best
        epoch so far: the model is selected among the epochs of the last stage.
        """
        return ()

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, criterion: nn.Module, **aux: torch.Tensor
             ) -> torch.Tensor:
        """The training loss of the batch whose forward gave ``logits`` and ``aux`` (``forward(x, with_aux=True)``;
        targets may be soft, from Mixup)."""
        return criterion(logits, targets)

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
# Inside the blocks: methods that add modules to each block call the block's own sub-modules


# VPT's MLP head: the last layer's bias starts at the log-odds of a 1 % prior (as in focal-loss detectors)
_VPT_HEAD_PRIOR = 0.01


def make_head(in_features: int, num_classes: int, cfg: MethodConfig) -> nn.Module:
    """The classification head ``in_features -> num_classes`` as ``cfg.head_init`` / ``cfg.head_norm`` ask.

    A plain ``nn.Linear`` (so checkpoint keys stay ``head.weight`` / ``head.bias``), or, with ``head_norm``,
    ``Sequential(BatchNorm1d(affine=False, eps=1e-6), Linear)``: MAE's linear-probe head, which AdaptFormer's
    code trains. ``head_init`` (see :class:`~insvp_cli.config.schema.MethodConfig`) sets the linear layer's start.
    """
    linear = nn.Linear(in_features, num_classes)
    if cfg.head_init == "vpt":  # VPT's src/models/mlp.py, with special_bias as VPT's ViT models build it
        nn.init.kaiming_normal_(linear.weight, a=0, mode="fan_out")
        nn.init.constant_(linear.bias, -math.log((1 - _VPT_HEAD_PRIOR) / _VPT_HEAD_PRIOR))
    elif cfg.head_init == "trunc_normal":
        nn.init.trunc_normal_(linear.weight, std=0.01)
        nn.init.zeros_(linear.bias)
    if cfg.head_norm:
        return nn.Sequential(nn.BatchNorm1d(in_features, affine=False, eps=1e-6), linear)
    return linear


_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU}
