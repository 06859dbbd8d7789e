"""insvp: InsVP (instance visual prompting, ACM MM 2024) and its comparison methods on frozen timm ViTs.

Python API::

    import insvp_cli
    model = insvp_cli.load_model("runs/quickstart/insvp/best.pt")   # eval mode, logits out
    transform = insvp_cli.load_transform("runs/quickstart/insvp/best.pt")  # PIL image -> normalised tensor
    result = insvp_cli.predict("runs/quickstart/insvp/best.pt", ["photos/"], out="preds.csv")

The API functions are imported on first use, so ``import insvp_cli`` (and ``insvp --help``) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runs.trained import load_model, load_transform
    from .use.predict import predict

__version__ = "0.2.0"
__all__ = ["load_model", "load_transform", "predict", "__version__"]

# public name -> the module that defines it
_LAZY = {"load_model": "runs.trained", "load_transform": "runs.trained", "predict": "use.predict"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
