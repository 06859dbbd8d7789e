"""``imagefolder``: any dataset laid out as class folders, for tasks beyond the paper's benchmarks.

``<root>/train/<class>/*.jpg`` and ``<root>/test/<class>/*.jpg`` are required, ``<root>/val/<class>/`` is
optional (without it, validation is carved from train with ``data.val_fraction``). Classes are the
folder names under ``train/``, sorted (torchvision's ``ImageFolder`` convention); a class folder in
``val/`` or ``test/`` that ``train/`` lacks is an error, a class missing from them is allowed.
"""

from __future__ import annotations

from pathlib import Path

from ..common.errors import UsageError
from ..config.schema import DataConfig
from .base import ImageFiles, Parts
from .registry import register_dataset, require_root

LAYOUT = "<root>/train/<class>/*.jpg, <root>/test/<class>/*.jpg and optionally <root>/val/<class>/*.jpg"


def _read_split(folder: Path, class_to_idx: dict[str, int], allow_empty: bool) -> ImageFiles:
    extra = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name not in class_to_idx)
    if extra:
        raise UsageError(f"imagefolder: {folder} has class folders that train/ lacks: {', '.join(extra[:5])}")
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    try:
        samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=allow_empty)
    except FileNotFoundError as exc:  # a class folder without any image file
        raise UsageError(f"imagefolder: {exc}") from None
    return ImageFiles([p for p, _ in samples], [y for _, y in samples])


@register_dataset("imagefolder", flip=True, layout=LAYOUT, summary="class folders: train/, test/, optional val/")
def read_imagefolder(cfg: DataConfig) -> Parts:
    """Read ``train/``, ``val/`` (if present) and ``test/`` under ``cfg.root``."""
    root = require_root(cfg, LAYOUT)
    for required in ("train", "test"):
        if not (root / required).is_dir():
            raise UsageError(f"imagefolder: {root / required} not found; expected {LAYOUT}")
    from torchvision.datasets.folder import find_classes

    try:
        classes, class_to_idx = find_classes(root / "train")
    except FileNotFoundError:
        raise UsageError(f"imagefolder: {root / 'train'} has no class folders; expected {LAYOUT}") from None
    train = _read_split(root / "train", class_to_idx, allow_empty=False)
    val = _read_split(root / "val", class_to_idx, allow_empty=True) if (root / "val").is_dir() else None
    test = _read_split(root / "test", class_to_idx, allow_empty=True)
    return Parts(train, val, test, classes)
