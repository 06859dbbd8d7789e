"""InsVP's configuration and its two presets.

Fields left at ``None`` take the preset's value when the config is built, so the resolved config
(written to every run folder) always shows the exact numbers that ran.

``paper`` follows the paper's text (§3): convex fusion weights ``beta_I = 0.7``, ``beta_F = 0.5``,
``L_p = 9``, a global prompter of two *dilated* convolutions, ``G_s`` fed the original image. The
paper gives no kernel sizes; ours are small and cheap: ``G_g`` 5x5 convolutions with dilations 2 and
4 (receptive field 25 px, about 0.1 GFLOPs at 224), ``G_l`` hidden width 16, ``G_s`` kernels 7/9/3.

``release`` is the authors' code (docs/method.md §2): ``G_g`` 11x11 and 25x25 convolutions, weights
``p_I = p_l + 2 p_g`` and ``p_F = p_c + p_s``, ``L_p = 16``, ``p_c`` initialised U(-1, 1), ``G_s`` fed
the prompted image, and weight decay on every trainable tensor (the release builds one AdamW group over
all of them, ``p_c`` and biases included: ``decay_all``). Per-dataset SimAM and ``L_p`` live in the
recipes. Its model computes the release's function exactly (same eval logits, see ``convert``); what it
does not copy, each a documented difference:

- ``G_s`` runs once per forward in eval mode, not once in each block: identical outputs, 6.4 GFLOPs less per
  image on ViT-B/16. In training the release draws new dropout masks inside ``G_s`` for every block, and masks
  inside a network cannot be replayed on its output, so the preset recomputes ``G_s`` per block in training
  (``specific_per_block: true``), as the release does: 11 more ``G_s`` passes on ViT-B, 46.44 instead of 40.03
  forward GFLOPs per training image (``benchmarks/flops.py``'s "release as published" row), plus their
  backward. ``specific_per_block: false`` shares one ``p_s`` across the blocks (the ``paper`` preset's way),
  the one training-time difference from the release's model then.
- the backbone is frozen (the release computes its weight gradients and discards them) and ``G_s`` trains
  (the release's optimizer misses it; ``freeze_specific_prompter`` reproduces that).
- the schedule: bf16 autocast on CUDA by default, where the release uses fp16 autocast with a GradScaler
  (``train.precision: fp16``); the cosine decays to ``train.min_lr`` (1e-6), where the release's decays
  to 0 (``train.min_lr: 0``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ...common.errors import ConfigError
from ...config.coerce import bounded
from ...config.limits import MAX_BLOCKS, MAX_FACTOR, MAX_KERNEL, MAX_TOKENS, MAX_WIDTH
from ...config.protocols import Protocol
from ...config.schema import MethodConfig

PRESETS: dict[str, dict[str, object]] = {
    "paper": {
        "prompt_len": 9,
        "global_weight": 0.7,
        "patch_weight": 0.3,
        "common_weight": 0.5,
        "specific_weight": 0.5,
        "global_kernels": [5, 5],
        "global_dilations": [2, 4],
        "specific_input": "image",
        "common_init": "xavier",
        "decay_all": False,
        "specific_per_block": False,
    },
    "release": {
        "prompt_len": 16,
        "global_weight": 2.0,
        "patch_weight": 1.0,
        "common_weight": 1.0,
        "specific_weight": 1.0,
        "global_kernels": [11, 25],
        "global_dilations": [1, 1],
        "specific_input": "prompted",
        "common_init": "uniform",
        "decay_all": True,
        "specific_per_block": True,
    },
}


@dataclass
class InsVPConfig(MethodConfig):
    """InsVP hyper-parameters (fields at ``None`` come from :data:`PRESETS`).

    Attributes:
        preset: ``paper`` or ``release``.
        patch_prompter: use the patch prompter ``G_l`` (image level).
        global_prompter: use the global prompter ``G_g`` (image level).
        common_prompt: use the common prompt ``p_c`` (feature level).
        specific_prompter: use the specific prompter ``G_s`` (feature level).
        prompt_len: ``L_p``, prompt tokens per block.
        prompt_blocks: ``N_F``, the number of blocks given prompts (``None``: all blocks).
        beta_image: shortcut for ``global_weight = beta_I``, ``patch_weight = 1 - beta_I``.
        beta_feature: shortcut for ``common_weight = beta_F``, ``specific_weight = 1 - beta_F``.
        global_weight, patch_weight: ``p_I = global_weight * p_g + patch_weight * p_l``.
        common_weight, specific_weight: ``p_F_j = common_weight * p_c_j + specific_weight * p_s``.
        patch_hidden: hidden width of ``G_l``.
        global_hidden: hidden channels of ``G_g``.
        global_kernels, global_dilations: the two convolutions of ``G_g``.
        specific_kernels: the three convolutions of ``G_s`` (release: 7/9/3, CUB 9/5/3).
        specific_input: ``image`` (paper: ``G_s(x)``) or ``prompted`` (release: ``G_s(x + p_I)``).
        common_init: ``xavier`` (VPT's uniform init) or ``uniform`` (U(-1, 1), the release).
        dropout: dropout of ``G_l``, ``G_g``, ``G_s`` and ``p_c`` (``p_c``'s mask is drawn per image, as
            the release drops out the prompt after expanding it to the batch).
        simam: pass the input through parameter-free SimAM attention first (release: CUB, Dogs, SVHN).
        freeze_specific_prompter: keep ``G_s`` at its initialisation, as the release does by accident.
        decay_all: weight decay on every trainable tensor, biases and ``p_c`` included (release: one AdamW
            group); ``False``: none on biases, norms and ``p_c`` (paper preset, timm's convention).
        specific_per_block: in training, run ``G_s`` again for every prompted block with its own dropout
            masks, as the release does (``release`` preset); ``False`` (``paper``) runs it once per forward.
            Eval is identical. The cost, training only: ``N_F - 1`` more ``G_s`` passes, forward and backward
            (ViT-B/16 at 224, ``release``: 46.44 instead of 40.03 forward GFLOPs per image, ``benchmarks/flops.py``).
        conv_impl: how the convolutions of ``G_g`` and ``G_s`` run: ``auto`` (where faster: an FFT on CPU for large
            kernels over few channels, the release's ``G_g``; else ``conv2d``, on CPU in channels-last layout:
            :mod:`~insvp_cli.methods.insvp.fftconv`), ``direct`` (``conv2d``) or ``fft``. The same function to
            float32 rounding; exports always run ``conv2d``.
    """

    name: str = "insvp"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"InsVP": ()}
    # the shared protocol is the release's (docs/method.md §2)
    published: ClassVar[Protocol] = Protocol(source="the authors' release: the shared protocol (docs/method.md §2)")
    preset: Literal["paper", "release"] = "paper"
    patch_prompter: bool = True
    global_prompter: bool = True
    common_prompt: bool = True
    specific_prompter: bool = True
    prompt_len: int | None = bounded(None, ge=0, le=MAX_TOKENS)
    prompt_blocks: int | None = bounded(None, ge=0, le=MAX_BLOCKS)
    beta_image: float | None = bounded(None, ge=0, le=1)
    beta_feature: float | None = bounded(None, ge=0, le=1)
    global_weight: float | None = bounded(None, ge=0, le=MAX_FACTOR)
    patch_weight: float | None = bounded(None, ge=0, le=MAX_FACTOR)
    common_weight: float | None = bounded(None, ge=0, le=MAX_FACTOR)
    specific_weight: float | None = bounded(None, ge=0, le=MAX_FACTOR)
    patch_hidden: int = bounded(16, ge=1, le=MAX_WIDTH)
    global_hidden: int = bounded(6, ge=1, le=MAX_WIDTH)
    global_kernels: list[int] | None = bounded(None, ge=1, le=MAX_KERNEL)
    global_dilations: list[int] | None = bounded(None, ge=1, le=MAX_KERNEL)
    specific_kernels: list[int] = bounded(ge=1, le=MAX_KERNEL, default_factory=lambda: [7, 9, 3])
    specific_input: Literal["image", "prompted"] | None = None
    common_init: Literal["xavier", "uniform"] | None = None
    dropout: float = bounded(0.1, ge=0, lt=1)
    simam: bool = False
    freeze_specific_prompter: bool = False
    decay_all: bool | None = None
    specific_per_block: bool | None = None
    conv_impl: Literal["auto", "direct", "fft"] = "auto"

    def __post_init__(self) -> None:
        self._apply_betas()
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) is None:
                setattr(self, key, list(value) if isinstance(value, list) else value)
        self._validate()

    def _apply_betas(self) -> None:
        for beta, pair in (("beta_image", ("global_weight", "patch_weight")),
                           ("beta_feature", ("common_weight", "specific_weight"))):
            value = getattr(self, beta)
            if value is None:
                continue
            weights = (value, 1.0 - value)
            for key, weight in zip(pair, weights, strict=True):
                current = getattr(self, key)
                if current is not None and abs(current - weight) > 1e-12:
                    raise ConfigError(f"method.{beta}={value} contradicts method.{key}={current}; set one of them")
                setattr(self, key, weight)

    def _validate(self) -> None:
        for key, length in (("global_kernels", 2), ("global_dilations", 2), ("specific_kernels", 3)):
            values = getattr(self, key)
            if len(values) != length:
                raise ConfigError(f"method.{key}: {values} must be {length} positive integers")
        for key in ("global_kernels", "specific_kernels"):
            if any(k % 2 == 0 for k in getattr(self, key)):
                raise ConfigError(f"method.{key}: {getattr(self, key)} must be odd (same-size padding)")

    def embeddings(self) -> tuple[str, ...]:
        """``features`` and, when ``G_s`` is built (on, with prompt tokens in some block), ``specific-prompt``."""
        built = self.specific_prompter and self.prompt_len > 0 and self.prompt_blocks != 0
        return ("features", "specific-prompt") if built else ("features",)
