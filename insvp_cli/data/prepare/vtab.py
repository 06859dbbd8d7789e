"""Sources of the 19 VTAB-1k tasks (Zhai et al. 2019; InsVP's Table 2), in the image-folder layout of
:mod:`insvp_cli.data.vtab`.

The source is the image-folder release of VTAB-1k that VPT-family code reads (NOAH, RepAdapter: ``vtab-1k.zip``,
one folder per task with ``images/`` and the lists ``train800.txt``, ``val200.txt``, ``train800val200.txt``,
``test.txt``), so no TensorFlow is needed and every task comes from one download, shared by the 19 tasks (each
extracts only its own folder). Nobody publishes its checksum, and a community copy once held 12 of the 19 tasks
(luogen1996/RepAdapter#2), so every task is checked after extraction: 800 / 200 / 1,000 lines in its training lists,
the official test size in ``test.txt`` and every listed image present and readable.
"""

from __future__ import annotations

from pathlib import Path

from ..vtab import VTAB_TASKS
from .sources import Remote, Source, Unpack, register_source

# official test-set sizes (VPT, Jia et al. 2022, appendix Table 7; VTAB's test splits)
TEST_SIZES = {
    "cifar": 10000, "caltech101": 6084, "dtd": 1880, "oxford_flowers102": 6149, "oxford_iiit_pet": 3669,
    "svhn": 26032, "sun397": 21750, "patch_camelyon": 32768, "eurosat": 5400, "resisc45": 6300,
    "diabetic_retinopathy": 42670, "clevr_count": 15000, "clevr_dist": 15000, "dmlab": 22735, "kitti": 711,
    "dsprites_loc": 73728, "dsprites_ori": 73728, "smallnorb_azi": 12150, "smallnorb_ele": 12150,
}
TRAIN_LISTS = {"train800": 800, "val200": 200, "train800val200": 1000}
ARCHIVE = "vtab-1k.zip"
RELEASE = Remote(
    ARCHIVE, ("https://huggingface.co/datasets/XiN0919/VTAB-1k/resolve/main/vtab-1k.zip",), None, None,
    "no published checksum (about 4.7 GB): every task is verified by its counts (800 / 200 / 1,000 and the official "
    "test size) and by reading every listed image",
)
LICENCE = ("each task keeps its source dataset's terms (VTAB: Zhai et al. 2019, Apache-2.0 code; the images are "
           "CIFAR-100, Caltech-101, DTD, ... under their own terms)")


def list_counts(task: str):
    """The count check of ``task``: one line per list file whose length is not VTAB-1k's."""
    expected = {**TRAIN_LISTS, "test": TEST_SIZES[task]}

    def check(folder: Path) -> list[str]:
        problems = []
        for stem, n in expected.items():
            path = folder / f"{stem}.txt"
            found = sum(1 for line in path.read_text().splitlines() if line.strip()) if path.is_file() else 0
            if found != n:
                problems.append(f"{stem}.txt lists {found} images, VTAB-1k's {task} has {n}")
        return problems

    return check


for _task in VTAB_TASKS:
    register_source(Source(
        f"vtab/{_task}", "vtab", f"vtab-1k/{_task}", (RELEASE,), (Unpack(ARCHIVE, strip=f"vtab-1k/{_task}/"),),
        "https://google-research.github.io/task_adaptation/", LICENCE, ("vtab",), check=list_counts(_task),
        manual="the release is also on Google Drive (id 1yZKwiKdsBzTfBgnStRveYMokc7GMMd5p, RepAdapter's link): "
               "download vtab-1k.zip there and pass its folder with --from",
    ))
