"""DamVPConfig: the hyper-parameters of the ``damvp`` method (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...common.errors import ConfigError
from ...config.coerce import bounded, build_dataclass
from ...config.limits import MAX_CLASSES, MAX_COUNT, MAX_EPOCHS, MAX_FACTOR, MAX_IMAGE_SIZE
from ...config.protocols import NO_MIXING, VPT_PROMPT_LRS, VPT_WEIGHT_DECAYS, Protocol
from ...config.schema import DataConfig, MethodConfig


@dataclass
class DamVPConfig(MethodConfig):
    """DAM-VP hyper-parameters.

    Attributes:
        num_clusters: clusters of the training set, one prompt each (ours: a config value; DAM-VP's count
            follows from a distance threshold).
        pad: the prompt frame's width in pixels; ``None``: 30 px at 224, scaled with the input (as ``vp``).
        cluster_samples: training images whose features are clustered (DAM-VP: 1,000).
        meta_data: meta-training datasets, each a ``data`` config mapping (``{name: vtab, root:
            data/vtab-1k/sun397}``; its ``batch_size`` is the meta batch); empty: no meta-training.
        meta_epochs: meta-training passes over the smallest meta dataset, one batch of each per step
            (DAM-VP: 200).
        meta_lr: the inner SGD learning rate of the cluster prompts, decayed by a cosine to 0 over the meta
            steps (DAM-VP's ViT-B/22k command: 1.0).
        meta_inner_steps: inner SGD steps per meta step (DAM-VP's ViT-B/22k command: 4).
        meta_step_size: Reptile's outer step towards the adapted prompts (DAM-VP's ViT-B/22k command: 0.5).
        meta_weight_decay: the inner steps' weight decay on the prompts (DAM-VP: 1e-4).
    """

    name: str = "damvp"
    paper_rows: ClassVar[Mapping[str, tuple[str, ...]]] = {"DAM-VP": ()}
    # the head-tuning version of its task adapting: SGD (its "momemtum" key is misspelled, so momentum stays 0), the
    # prompts decayed and the head not, warm-up over a fifth of 50 epochs then cosine, batch 128, plain cross-entropy.
    # Its command sets the prompts' learning rate (the parser's default is for the head-free version): 1.0, the inner
    # learning rate of its meta-training, until tuned on VPT's prompt grid
    published: ClassVar[Protocol] = Protocol(
        source="shikiw/DAM-VP: task_adapting/adapter.py (our_method_with_head), arguments.py",
        train={"optimizer": "sgd", "momentum": 0.0, "lr": 1.0, "weight_decay": 0.0001, "schedule": "cosine",
               "min_lr": 0.0, "epochs": 50, "warmup_fraction": 0.2, **NO_MIXING},
        data={"batch_size": 128}, method={"weight_decay_skip": ["head.*"]}, base_lrs=VPT_PROMPT_LRS,
        weight_decays=VPT_WEIGHT_DECAYS,
    )
    num_clusters: int = bounded(10, ge=1, le=MAX_CLASSES)
    pad: int | None = bounded(None, ge=1, le=MAX_IMAGE_SIZE)
    cluster_samples: int = bounded(1000, ge=1, le=MAX_COUNT)
    meta_data: list[dict[str, Any]] = field(default_factory=list)
    meta_epochs: int = bounded(200, ge=1, le=MAX_EPOCHS)
    meta_lr: float = bounded(1.0, gt=0, le=MAX_FACTOR)
    meta_inner_steps: int = bounded(4, ge=1, le=MAX_EPOCHS)
    meta_step_size: float = bounded(0.5, gt=0, le=MAX_FACTOR)
    meta_weight_decay: float = bounded(1e-4, ge=0, le=MAX_FACTOR)

    def __post_init__(self) -> None:
        if self.num_clusters > self.cluster_samples:
            raise ConfigError(f"method.num_clusters: {self.num_clusters} clusters from method.cluster_samples="
                              f"{self.cluster_samples} images; cluster at least as many images as clusters")
        for i, item in enumerate(self.meta_data):  # a typo in a meta dataset fails now, not after hours
            build_dataclass(DataConfig, item, f"method.meta_data[{i}]")

    def meta_datasets(self) -> list[DataConfig]:
        """``meta_data`` as validated data configs."""
        return [build_dataclass(DataConfig, item, f"method.meta_data[{i}]") for i, item in enumerate(self.meta_data)]
