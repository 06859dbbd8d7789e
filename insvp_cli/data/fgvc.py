"""The fine-grained sets of the HTA benchmark with VPT's FGVC splits (InsVP, ACM MM 2024, §4.1; docs/method.md §4).

Each split is a JSON file ``{"relative/image/path.jpg": class_id}`` (``train.json``, ``val.json``,
``test.json``), with paths relative to the dataset's image root, read from ``data.split_dir`` when set, else from
``data.root`` when it holds ``train.json``, else from VPT's files shipped with insvp (``insvp_cli/data/fgvc_splits``,
gzipped). Class ids (strings such as ``"001"`` for CUB, integers elsewhere) map to contiguous labels by sorted
id, over the union of the three files: NABirds' ``val.json`` lacks two of the 555 classes, and a
per-file mapping would shift every label after them.

Published counts (train / val / test / classes): CUB 5394/600/5794/200, NABirds 21536/2393/24633/555,
Oxford Flowers 1020/1020/6149/102, Stanford Dogs 10800/1200/8580/120, Stanford Cars 7329/815/8041/196.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import UsageError
from ..config.schema import DataConfig
from .base import ImageFiles, Parts
from .registry import register_dataset, require_root

SPLITS = ("train", "val", "test")
SHIPPED_SPLITS = Path(__file__).with_name("fgvc_splits")  # <dataset>/<split>.json.gz, see its README.md
ClassId = str | int


@dataclass(frozen=True)
class FgvcSet:
    """Where one FGVC dataset keeps its images and how its classes are named.

    Attributes:
        image_dir: folder under the root that the JSON paths are relative to ("" for the root itself).
        example: one JSON key, to show the expected layout.
        names: class names for the sorted class ids, given the root and the annotations.
    """

    image_dir: str
    example: str
    names: Callable[[Path, list[ClassId], dict[str, ClassId]], list[str]]

    def layout(self) -> str:
        images = f"<root>/{self.image_dir}" if self.image_dir else "<root>"
        return (f"images under {images} at the paths listed in VPT's train.json / val.json / test.json "
                f"(e.g. {images}/{self.example}); the JSON files ship with insvp (data.split_dir, or the files in "
                "data.root, replace them)")


def _sort_key(class_id: ClassId) -> tuple[int, int | str]:
    # numeric ids sort as numbers ("9" before "10"); anything else sorts as text after them
    text = str(class_id)
    return (0, int(text)) if text.isdigit() else (1, text)


def _folder_names(root: Path, ids: list[ClassId], annotations: dict[str, ClassId]) -> list[str]:
    """Name each class after the folder its images are in (CUB ``001.Black_footed_Albatross``, Dogs
    ``n02085620-Chihuahua``), falling back to the id when a class's images are not in one folder."""
    folders: dict[str, set[str]] = {}
    for path, class_id in annotations.items():
        folders.setdefault(str(class_id), set()).add(path.split("/")[0] if "/" in path else "")
    names = []
    for class_id in ids:
        found = folders.get(str(class_id), set())
        names.append(next(iter(found)) if len(found) == 1 and "" not in found else str(class_id))
    return names


def _nabirds_names(root: Path, ids: list[ClassId], annotations: dict[str, ClassId]) -> list[str]:
    """NABirds names from the dataset's ``classes.txt`` (``<id> <name>`` lines) when present."""
    table: dict[int, str] = {}
    classes_txt = root / "classes.txt"
    if classes_txt.is_file():
        for line in classes_txt.read_text().splitlines():
            number, _, name = line.strip().partition(" ")
            if number.isdigit() and name:
                table[int(number)] = name
    return [table.get(int(str(c)), str(c)) if str(c).isdigit() else str(c) for c in ids]


def _flowers_names(root: Path, ids: list[ClassId], annotations: dict[str, ClassId]) -> list[str]:
    """Oxford Flowers ids are 1..102 in the order of torchvision's Flowers-102 class names."""
    from torchvision.datasets import Flowers102

    names = Flowers102.classes
    return [names[int(str(c)) - 1] if str(c).isdigit() and 1 <= int(str(c)) <= len(names) else str(c) for c in ids]


def _id_names(root: Path, ids: list[ClassId], annotations: dict[str, ClassId]) -> list[str]:
    return [str(c) for c in ids]


FGVC_SETS = {
    "cub": FgvcSet("images", "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg", _folder_names),
    "nabirds": FgvcSet("images", "0817/0000139e21dc4d0cbfe14cae3c85c829.jpg", _nabirds_names),
    "oxford_flowers": FgvcSet("", "jpg/image_06734.jpg", _flowers_names),
    "stanford_dogs": FgvcSet("Images", "n02085620-Chihuahua/n02085620_2650.jpg", _folder_names),
    "stanford_cars": FgvcSet("", "car_ims/000046.jpg", _id_names),
}
SUMMARIES = {
    "cub": "CUB-200-2011, 200 classes (VPT FGVC splits)",
    "nabirds": "NABirds, 555 classes (VPT FGVC splits)",
    "oxford_flowers": "Oxford Flowers, 102 classes (VPT FGVC splits)",
    "stanford_dogs": "Stanford Dogs, 120 classes (VPT FGVC splits)",
    "stanford_cars": "Stanford Cars, 196 classes (VPT FGVC splits)",
}


def read_split_file(path: Path, name: str) -> dict[str, ClassId]:
    """One VPT split file: a JSON object mapping relative image paths to class ids."""
    if not path.is_file():
        raise UsageError(f"{name}: split file {path} not found; expected {FGVC_SETS[name].layout()}")
    try:
        data = json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise UsageError(f"{name}: split file {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, int)) and not isinstance(v, bool) for k, v in data.items()
    ):
        raise UsageError(f'{name}: split file {path} must map image paths to class ids, e.g. {{"a/b.jpg": "3"}}')
    return data


def split_files(name: str, cfg: DataConfig, root: Path) -> dict[str, Path]:
    """The train / val / test split files of dataset ``name``: ``data.split_dir``'s, else those in the root, else
    the shipped ones."""
    if cfg.split_dir:
        folder, suffix = Path(cfg.split_dir).expanduser(), ".json"
    elif (root / "train.json").is_file():
        folder, suffix = root, ".json"
    else:
        folder, suffix = SHIPPED_SPLITS / name, ".json.gz"
    return {split: folder / f"{split}{suffix}" for split in SPLITS}


def read_fgvc(name: str, cfg: DataConfig) -> Parts:
    """Read dataset ``name`` of :data:`FGVC_SETS` from ``cfg.root`` / ``cfg.split_dir``."""
    spec = FGVC_SETS[name]
    root = require_root(cfg, spec.layout())
    image_root = root / spec.image_dir
    if not image_root.is_dir():
        raise UsageError(f"{name}: image folder {image_root} not found; expected {spec.layout()}")
    annotations = {split: read_split_file(path, name) for split, path in split_files(name, cfg, root).items()}
    first = next(iter(annotations["train"]), None)
    if first is not None and not (image_root / first).is_file():  # not this dataset's images (or none at all)
        raise UsageError(f"{name}: {image_root / first}, the first training image, not found; expected {spec.layout()}")
    # a class id may be "001" in one file and 1 in another only if someone rewrote a file; key by text
    ids = sorted({str(c) for ann in annotations.values() for c in ann.values()}, key=_sort_key)
    label_of = {class_id: i for i, class_id in enumerate(ids)}
    datasets = {
        split: ImageFiles([image_root / rel for rel in ann], [label_of[str(c)] for c in ann.values()])
        for split, ann in annotations.items()
    }
    merged = {path: c for ann in annotations.values() for path, c in ann.items()}
    classes = spec.names(root, ids, merged)
    return Parts(datasets["train"], datasets["val"], datasets["test"], classes)


def _register(name: str) -> None:
    register_dataset(name, flip=True, layout=FGVC_SETS[name].layout(), summary=SUMMARIES[name])(
        lambda cfg: read_fgvc(name, cfg)
    )


for _name in FGVC_SETS:
    _register(_name)
