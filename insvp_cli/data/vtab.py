"""VTAB-1k (Zhai et al. 2019), the benchmark of InsVP's Table 2 (ACM MM 2024, §4.1; docs/method.md §4).

The widely used image-folder release of the 19 tasks: one folder per task with four list files,
``<task>/{train800,val200,train800val200,test}.txt``, each line ``images/<split>/000000.jpg <label>`` (the
path relative to the task folder, then an integer label). ``data.root`` is the task folder itself
(``<vtab root>/caltech101``), so the task is chosen by ``data.root`` and no other config value.

``data.vtab_protocol`` picks the splits:

- ``tune`` (default): train ``train800``, validation ``val200``: for choosing hyper-parameters.
- ``final``: train ``train800val200``, test ``test``: the runs the paper reports. There is no held-out
  validation set in this protocol; ``val200`` (part of the training set) stands in for it, and the VTAB
  recipes evaluate only after the last epoch (``train.eval_every``), so the reported test accuracy is the
  final epoch's, as in VPT's protocol.

Both protocols read ``test.txt`` for the test split. Labels map to contiguous indices by sorted value
over the files read (VTAB's labels are already 0..K-1; a class that a small split lacks keeps its index).
Images are resized straight to the backbone's size without augmentation: the recipes set
``data.resize: direct`` and ``data.augment: false``.
"""

from __future__ import annotations

from pathlib import Path

from ..common.errors import UsageError
from ..config.schema import DataConfig
from .base import ImageFiles, Parts
from .registry import register_dataset

# The task folders of the common release, by the group means the paper reports (Table 2), in VPT's order.
VTAB_GROUPS: dict[str, tuple[str, ...]] = {
    "Natural": ("cifar", "caltech101", "dtd", "oxford_flowers102", "oxford_iiit_pet", "svhn", "sun397"),
    "Specialized": ("patch_camelyon", "eurosat", "resisc45", "diabetic_retinopathy"),
    "Structured": ("clevr_count", "clevr_dist", "dmlab", "kitti", "dsprites_loc", "dsprites_ori", "smallnorb_azi",
                   "smallnorb_ele"),
}
VTAB_TASKS: tuple[str, ...] = tuple(task for tasks in VTAB_GROUPS.values() for task in tasks)
# (train, validation, test) list files of each protocol
PROTOCOL_FILES: dict[str, tuple[str, str, str]] = {
    "tune": ("train800", "val200", "test"),
    "final": ("train800val200", "val200", "test"),
}
TRAIN_SIZES = {"tune": 800, "final": 1000}  # training images of every task under each protocol

LAYOUT = ("<root> = one task folder (e.g. <vtab>/caltech101) holding train800.txt, val200.txt, "
          "train800val200.txt and test.txt with lines 'images/<split>/000000.jpg <label>'; task folders: "
          + ", ".join(VTAB_TASKS))


def read_list(path: Path) -> tuple[list[Path], list[int]]:
    """One list file: image paths (resolved against the task folder) and integer labels.

    Raises:
        UsageError: the file is missing or a line is not ``<relative path> <integer label>``.
    """
    if not path.is_file():
        raise UsageError(f"vtab: list file {path} not found; expected {LAYOUT}")
    paths, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        # split at the last blank: an image path may itself contain spaces
        rel, _, label = line.strip().rpartition(" ")
        if not rel or not label.lstrip("-").isdigit():
            raise UsageError(f"vtab: {path}:{number}: expected '<image path> <integer label>', got {line.strip()!r}")
        paths.append(path.parent / rel.strip())
        labels.append(int(label))
    return paths, labels


# VTAB-1k's tuning protocol (as VPT's tune_vtab.py): search on train800 / val200, then one run with the chosen values
# on train800val200 whose test accuracy is reported
@register_dataset("vtab", flip=False, layout=LAYOUT, summary="one VTAB-1k task (19 tasks; data.vtab_protocol)",
                  search_overrides=("data.vtab_protocol=tune",), final_overrides=("data.vtab_protocol=final",))
def read_vtab(cfg: DataConfig) -> Parts:
    """Read the list files of the task folder ``cfg.root`` for ``cfg.vtab_protocol``."""
    if cfg.root is None:
        raise UsageError(f"vtab: data.root is not set; expected {LAYOUT}")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise UsageError(f"vtab: task folder {root} (data.root) is not a folder; expected {LAYOUT}")
    lists = [read_list(root / f"{name}.txt") for name in PROTOCOL_FILES[cfg.vtab_protocol]]
    values = sorted({label for _, labels in lists for label in labels})
    index = {value: i for i, value in enumerate(values)}
    train, val, test = (ImageFiles(paths, [index[y] for y in labels]) for paths, labels in lists)
    return Parts(train, val, test, [str(v) for v in values])
