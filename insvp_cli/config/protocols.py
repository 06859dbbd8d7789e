"""Training protocols: the shared one every method trains with by default, and each method's published one.

InsVP (ACM MM 2024) compares with numbers that each cited work obtained with its own training protocol: VPT
and the baselines of its comparison with SGD, ILM-VP with Adam and a step schedule, and so on. A method
declares the protocol of its authors' code as a :class:`Protocol` beside its config (``published`` on the
config class), and ``method.protocol: published`` trains with it (docs/protocols.md lists them all, cited).
The default, ``method.protocol: shared``, is the release's AdamW protocol for every method (what
``insvp compare`` uses, so that methods differ only in themselves).

Layering (:func:`insvp_cli.resolve.layers.resolve_config`): a published protocol's ``train`` and ``data`` keys
replace the recipes' (a shipped recipe holds InsVP's learning rate for its dataset), its ``method`` keys sit
under the recipes' method keys, and ``--set`` wins over all of them.

No torch here: this sits beside :mod:`insvp_cli.config.schema`, under the methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# The shared protocol's default search space (``insvp sweep`` without a space of its own): learning rate x
# weight decay, 4 x 4 = 16 trials. The InsVP release's ten per-dataset learning rates (AdamW, batch 64;
# docs/method.md §2) run from 0.0005 to 0.005, which this grid spans; the weight decays are VPT's grid
# (tune_fgvc.py, tune_vtab.py).
SHARED_LRS = (0.0005, 0.001, 0.002, 0.005)
VPT_WEIGHT_DECAYS = (0.0, 0.0001, 0.001, 0.01)


def scaled_lrs(base_lrs: Sequence[float], batch_size: int) -> list[float]:
    """``base_lrs`` (for a batch of 256 images) scaled linearly to ``batch_size``, as VPT's trainer scales its
    grid (``lr = base_lr * batch / 256``), rounded to 6 significant digits."""
    return [float(f"{lr * batch_size / 256:.6g}") for lr in base_lrs]


def shared_grid() -> dict[str, list[Any]]:
    """The shared protocol's default grid: :data:`SHARED_LRS` x :data:`VPT_WEIGHT_DECAYS` (for any batch size)."""
    return {"train.lr": list(SHARED_LRS), "train.weight_decay": list(VPT_WEIGHT_DECAYS)}


@dataclass(frozen=True)
class Protocol:
    """How a method's authors trained it, as config keys.

    Attributes:
        source: where the numbers come from (repository and files), shown by ``insvp reproduce --dry-run``.
        train: ``train.*`` keys (optimizer, momentum, lr, weight decay, schedule, milestones, warm-up, epochs,
            Mixup, label smoothing).
        data: ``data.*`` keys (augmentation).
        method: the method's own keys (head initialisation, which tensors decay, dropout, stages).
        base_lrs: the authors' learning-rate grid for a batch of 256 images, scaled to the run's batch
            (:func:`scaled_lrs`) for ``insvp sweep``'s default space; empty: ``train.lr`` alone.
        weight_decays: the authors' weight-decay grid; empty: ``train.weight_decay`` alone.
    """

    source: str
    train: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    method: Mapping[str, Any] = field(default_factory=dict)
    base_lrs: tuple[float, ...] = ()
    weight_decays: tuple[float, ...] = ()

    def grid(self, batch_size: int) -> dict[str, list[Any]]:
        """The default search space of ``insvp sweep`` under this protocol, for a batch of ``batch_size``: the
        authors' grids, else this protocol's single value, else the shared grid's."""
        shared = shared_grid()
        lrs = scaled_lrs(self.base_lrs, batch_size)
        return {
            "train.lr": lrs or ([self.train["lr"]] if "lr" in self.train else shared["train.lr"]),
            "train.weight_decay": list(self.weight_decays) or (
                [self.train["weight_decay"]] if "weight_decay" in self.train else shared["train.weight_decay"]),
        }


# plain cross-entropy on unmixed images: what every published protocol here trains with but the release's
NO_MIXING: dict[str, Any] = {"mixup": 0.0, "cutmix": 0.0, "label_smoothing": 0.0}
# ILM-VP's step schedule, which AutoVP keeps: the learning rate / 10 at half and at 72 % of the run, no warm-up
ILM_STEPS: dict[str, Any] = {"schedule": "multistep", "milestones": [0.5, 0.72], "gamma": 0.1, "warmup_fraction": 0.0}

# VPT's solver (KMnP/vpt: src/solver/optimizer.py, src/solver/lr_scheduler.py, configs/base-prompt.yaml and
# configs/base-linear.yaml), which VPT's comparison runs for every method but full fine-tuning, and which E2VPT and
# Yoo et al build on: SGD with momentum 0.9, a linear warm-up of 10 of 100 epochs, then a cosine to 0; no Mixup, no
# label smoothing (SOLVER.LOSS softmax); every trainable tensor decays but the head's bias ("last_layer.bias").
VPT_SGD: dict[str, Any] = {
    "optimizer": "sgd", "momentum": 0.9, "schedule": "cosine", "epochs": 100, "warmup_fraction": 0.1,
    "min_lr": 0.0, **NO_MIXING,
}
VPT_DECAY: dict[str, Any] = {"weight_decay_skip": ["head.bias"], "head_init": "vpt"}
# VPT's grids (tune_fgvc.py, tune_vtab.py), for a batch of 256 images (scaled as `lr / 256 * batch`)
VPT_PROMPT_LRS = (50.0, 25.0, 10.0, 5.0, 2.5, 1.0, 0.5, 0.25, 0.1)  # prompt_main
VPT_LINEAR_LRS = (50.0, 25.0, 10.0, 5.0, 2.5, 1.0, 0.5, 0.25, 0.1, 0.05)  # linear_main
VPT_FULL_LRS = (0.0001, 0.0005, 0.001, 0.005)  # finetune_main
VPT_SOURCE = "KMnP/vpt: configs/base-{}.yaml, src/solver/optimizer.py, tune_fgvc.py"


def vpt_protocol(kind: str, batch_size: int, lr: float, base_lrs: Sequence[float], **method: Any) -> Protocol:
    """VPT's SGD protocol of its ``kind`` of config (``prompt``, ``linear``): its batch, CUB's learning rate and
    weight decay from ``configs/<kind>/cub.yaml`` (VPT tuned both per dataset: :attr:`Protocol.base_lrs`), VPT's
    head and weight-decay rule, and ``method`` keys of the method's own."""
    return Protocol(
        source=VPT_SOURCE.format(kind), train={**VPT_SGD, "lr": lr, "weight_decay": 0.01},
        data={"batch_size": batch_size}, method={**VPT_DECAY, **method}, base_lrs=tuple(base_lrs),
        weight_decays=VPT_WEIGHT_DECAYS,
    )
