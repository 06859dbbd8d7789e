"""insvp: InsVP (instance visual prompting, ACM MM 2024) and its comparison methods on frozen timm ViTs.

Python API::

    import insvp_cli
    model = insvp_cli.load_model("runs/quickstart/insvp/best.pt")   # eval mode, logits out
    transform = insvp_cli.load_transform("runs/quickstart/insvp/best.pt")  # PIL image -> normalised tensor

Importing the package is cheap: torch and timm load with the first of these functions that is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"
# public name -> the module that defines it, imported on first use
_API = {"load_model": "checkpoint", "load_transform": "checkpoint"}
__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
