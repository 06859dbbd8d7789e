"""E2VPTConfig: the hyper-parameters of the ``e2vpt`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from ...common.errors import ConfigError
from ...config.coerce import bounded
from ...config.limits import MAX_EPOCHS, MAX_TOKENS, MAX_WIDTH
from ...config.protocols import VPT_DECAY, VPT_PROMPT_LRS, VPT_SGD, VPT_WEIGHT_DECAYS, Protocol
from ...config.schema import DataConfig, MethodConfig

# (visual_tokens, kv_tokens) of E2VPT's published commands (``command.txt``, "Documented Version" sections, the
# same for its plain and its pruning-and-rewinding runs), by our dataset name (FGVC) or VTAB-1k task folder
FGVC_TOKENS = {name: (5, 5) for name in ("cub", "nabirds", "oxford_flowers", "flowers102", "stanford_dogs")}
VTAB_TOKENS = {
    "cifar": (5, 5), "caltech101": (32, 5), "dtd": (10, 5), "oxford_flowers102": (1, 1), "oxford_iiit_pet": (10, 5),
    "svhn": (10, 5), "sun397": (10, 5), "patch_camelyon": (10, 10), "eurosat": (10, 5), "resisc45": (10, 5),
    "diabetic_retinopathy": (10, 5), "clevr_count": (10, 5), "clevr_dist": (10, 5), "dmlab": (10, 5),
    "kitti": (10, 5), "dsprites_loc": (5, 5), "dsprites_ori": (5, 5), "smallnorb_azi": (10, 5),
    "smallnorb_ele": (10, 5),
}


def published_tokens(data: DataConfig) -> tuple[int, int] | None:
    """E2VPT's published ``(visual_tokens, kv_tokens)`` for the dataset of ``data``, if it published them."""
    if data.name == "vtab":  # the task is the folder (data.root = <vtab>/<task>)
        return VTAB_TOKENS.get(Path(data.root).name) if data.root else None
    return FGVC_TOKENS.get(data.name)


@dataclass
class E2VPTConfig(MethodConfig):
    """E2VPT hyper-parameters.

    Attributes:
        visual_tokens: visual prompt tokens per prompted block (per dataset: :meth:`dataset_defaults`).
        deep: visual prompts before every block (E2VPT's default) instead of before the first only.
        dropout: dropout on the visual prompts (drawn per image).
        kv_tokens: key-value prompt vectors per head in every block's attention (per dataset too).
        share_kv: one tensor for the key and the value prompts (E2VPT's default), else one each.
        kv_dropout: dropout on the key-value prompts.
        prune: prune the visual prompts at ``prune_epoch``, then rewind and train again.
        prune_epoch: the 0-based epoch at which pruning and rewinding happen (must be below ``train.epochs``).
        prune_tokens: the share of visual prompt tokens masked (at least ``min_tokens`` stay).
        prune_segments: the share of the remaining tokens' segments masked (each keeps ``min_segments``).
        segments: equal pieces of a token for segment-wise pruning (must divide the token width).
        min_tokens: tokens that always stay.
        min_segments: segments that every remaining token keeps.
        head_init: VPT's MLP head, as E2VPT's code (built on VPT's) trains (see
            :class:`~insvp_cli.config.schema.MethodConfig`).
    """

    name: str = "e2vpt"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"E2VPT": ()}
    # built on VPT's code: its SGD solver (prompts and key-value prompts decay) at base-prompt_changed_P_VK.yaml's
    # settings and its commands' batch of 64, a whole run, pruning and rewinding at epoch 100, and a whole run again;
    # the learning rate is tuned per dataset (tune_fgvc.py / tune_vtab.py): VPT's CUB value until then
    published: ClassVar[Protocol] = Protocol(
        source="ChengHan111/E2VPT: configs/base-prompt_changed_P_VK.yaml, command.txt, src/solver/optimizer.py",
        train={**VPT_SGD, "epochs": 200, "lr": 0.1, "weight_decay": 0.0001}, data={"batch_size": 64},
        method={**VPT_DECAY, "prune": True, "prune_epoch": 100}, base_lrs=VPT_PROMPT_LRS,
        weight_decays=VPT_WEIGHT_DECAYS,
    )
    visual_tokens: int = bounded(10, ge=1, le=MAX_TOKENS)
    deep: bool = True
    dropout: float = bounded(0.1, ge=0, lt=1)
    kv_tokens: int = bounded(5, ge=1, le=MAX_TOKENS)
    share_kv: bool = True
    kv_dropout: float = bounded(0.0, ge=0, lt=1)
    prune: bool = False
    prune_epoch: int = bounded(50, ge=1, le=MAX_EPOCHS)
    prune_tokens: float = bounded(0.5, ge=0, lt=1)
    prune_segments: float = bounded(0.5, ge=0, lt=1)
    segments: int = bounded(16, ge=1, le=MAX_WIDTH)
    min_tokens: int = bounded(1, ge=1, le=MAX_TOKENS)
    min_segments: int = bounded(4, ge=1, le=MAX_WIDTH)
    head_init: Literal["torch", "vpt", "trunc_normal"] = "vpt"

    @classmethod
    def dataset_defaults(cls, data: DataConfig) -> dict[str, Any]:
        """The token counts of E2VPT's published command for the dataset (:data:`FGVC_TOKENS`, :data:`VTAB_TOKENS`)."""
        tokens = published_tokens(data)
        return {} if tokens is None else {"visual_tokens": tokens[0], "kv_tokens": tokens[1]}

    def __post_init__(self) -> None:
        if self.min_tokens > self.visual_tokens:
            raise ConfigError(f"method.min_tokens: {self.min_tokens} is more than method.visual_tokens="
                              f"{self.visual_tokens}")
        if self.min_segments > self.segments:
            raise ConfigError(f"method.min_segments: {self.min_segments} is more than method.segments={self.segments}")
