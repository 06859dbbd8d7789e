"""insvp: InsVP (instance visual prompting, ACM MM 2024) and its comparison methods on frozen timm ViTs.

Python API::

    import insvp_cli
    model = insvp_cli.load_model("runs/quickstart/insvp/best.pt")   # eval mode, logits out
    transform = insvp_cli.load_transform("runs/quickstart/insvp/best.pt")  # PIL image -> normalised tensor
"""

from .checkpoint import load_model, load_transform

__version__ = "0.1.0"
__all__ = ["load_model", "load_transform", "__version__"]
