"""What the ``insvp serve`` benchmarks share: checkpoints of several methods on one random-init backbone, images.

InsVP: "Efficient Instance Visual Prompting from Image Itself" (ACM MM 2024). The tasks' trainable weights are
their initialisation (what is measured, memory and speed, does not depend on them); every task is saved as ``insvp
train`` saves a run's ``best.pt``, so the server loads them as it loads any checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from _models import build_method, method_config
from PIL import Image

from insvp_cli.runs.checkpoint import Checkpoint

NUM_CLASSES = 47  # DTD's, as in the README's parameter counts


def write_checkpoints(folder: Path, backbone: str, methods: list[str], img_size: int = 224) -> dict[str, Path]:
    """``folder/<method>/best.pt`` for each method, all built on one backbone object; ``{method: file}``."""
    shared, files = None, {}
    for method in methods:
        cfg = method_config(backbone, f"method.name={method}", f"backbone.img_size={img_size}")
        model = build_method(cfg, backbone=shared)
        shared = model.backbone
        files[method] = folder / method / "best.pt"
        Checkpoint.of(model, cfg, [f"class-{i}" for i in range(NUM_CLASSES)], {}, 0).save(files[method])
    return files


def write_images(folder: Path, count: int, size: int = 224) -> list[Path]:
    """``count`` PNGs of seeded noise, ``size`` px square."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"image-{i}.png" for i in range(count)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return paths
