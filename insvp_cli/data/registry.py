"""The dataset registry: each dataset's name, reader and layout, registered by the module of its family.

The families (:mod:`.digits`, :mod:`.fgvc`, :mod:`.folder`, :mod:`.torchvision_sets`, :mod:`.vtab`) are imported on
the registry's first look-up, and each imports torch only when it reads a dataset, so listing the datasets
(``insvp data list``) and reading a config import neither.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..common.errors import UsageError
from ..common.registry import Registry
from ..config.schema import DataConfig

if TYPE_CHECKING:
    from .base import Parts

# the modules that register datasets, imported on the registry's first look-up
FAMILIES = ("digits", "fgvc", "folder", "torchvision_sets", "vtab")


def _import_families() -> None:
    for family in FAMILIES:
        importlib.import_module(f"{__package__}.{family}")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset.

    Attributes:
        name: the ``data.name`` that selects it.
        read: reads the dataset's files (or package data) described by a :class:`DataConfig`.
        flip: a horizontal flip keeps the label (false for digits and traffic signs).
        layout: the expected on-disk layout, quoted in errors and in ``insvp data check --help``.
        summary: one line for listings.
        search_overrides: ``--set`` values of every trial of a hyper-parameter search (``insvp sweep``), for a
            dataset whose benchmark defines its own tuning splits (VTAB-1k: ``train800`` / ``val200``).
        final_overrides: ``--set`` values of the run that follows a search with the chosen values, for a
            benchmark that defines one (VTAB-1k: ``train800val200``); empty: no such run.
    """

    name: str
    read: Callable[[DataConfig], Parts]
    flip: bool
    layout: str
    summary: str
    search_overrides: tuple[str, ...] = ()
    final_overrides: tuple[str, ...] = ()


DATASETS: Registry[DatasetSpec] = Registry("dataset", populate=_import_families)


def register_dataset(name: str, *, flip: bool, layout: str, summary: str, search_overrides: tuple[str, ...] = (),
                     final_overrides: tuple[str, ...] = ()) -> Callable:
    """Decorator: register a ``read(cfg) -> Parts`` function as dataset ``name``."""

    def decorate(read: Callable[[DataConfig], Parts]) -> Callable[[DataConfig], Parts]:
        DATASETS.register(name, DatasetSpec(name, read, flip, layout, summary, search_overrides, final_overrides))
        return read

    return decorate


def require_root(cfg: DataConfig, layout: str, download_hint: bool = False) -> Path:
    """``cfg.root`` as a path that exists, else a :class:`UsageError` naming the expected layout."""
    hint = "; or set data.download=true to let torchvision download it (needs network)" if download_hint else ""
    if cfg.root is None:
        if download_hint and cfg.download:
            raise UsageError(f"{cfg.name}: data.download=true needs data.root, the folder to download into")
        raise UsageError(f"{cfg.name}: data.root is not set; expected {layout}{hint}")
    root = Path(cfg.root).expanduser()
    if not root.is_dir() and not (download_hint and cfg.download):
        raise UsageError(f"{cfg.name}: data.root {root} is not a folder; expected {layout}{hint}")
    return root


