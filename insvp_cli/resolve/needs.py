"""What a method needs from the data beyond images and labels: declared by its config, checked before any work.

A method's config names its needs (:meth:`~insvp_cli.config.schema.MethodConfig.requires`, e.g. TransHP's
``hierarchy``); :data:`NEEDS` says how the data config provides each one. :func:`bind_requirements` checks
them and fills in the method values that follow from the data (TransHP's number of coarse classes), so the
resolved config written to the run folder and into checkpoints rebuilds the model without the data.
``fit``, ``insvp compare`` (for every method, before the first one trains) and ``insvp reproduce`` (for every
run of a table) call it. This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..common.errors import UsageError
from ..config.schema import Config, DataConfig
from ..data.hierarchy import hierarchy_file, read_hierarchy


@dataclass(frozen=True)
class Need:
    """Something a method may need from the data.

    Attributes:
        what: what it is, for messages ("a coarse-label hierarchy").
        read: what the data config provides (``None``: nothing).
        how: how a user provides it, for messages.
    """

    what: str
    read: Callable[[DataConfig], Any]
    how: str


class MissingNeed(UsageError):
    """The data does not provide something the method needs; the message says what and how to give it."""

    def __init__(self, method: str, need: Need, dataset: str):
        super().__init__(f"method {method} needs {need.what}, which data.name={dataset} does not provide: {need.how}")
        self.method, self.need = method, need


def _hierarchy(cfg: DataConfig) -> Any:
    path = hierarchy_file(cfg)
    return None if path is None else read_hierarchy(path)


NEEDS: dict[str, Need] = {
    "hierarchy": Need(
        "a coarse-label hierarchy", _hierarchy,
        "set data.hierarchy=FILE (a YAML or JSON file mapping class names or label indices to coarse labels) or "
        "put hierarchy.yaml in data.root; cifar100 has one built in",
    ),
}


def coarse_labels(cfg: Config, classes: Sequence[str]) -> list[int] | None:
    """The coarse label of each class (in ``classes`` order) when the method needs a hierarchy, else ``None``.

    Raises:
        UsageError: the hierarchy file cannot be read or does not cover ``classes``.
    """
    if "hierarchy" not in cfg.method.requires():
        return None
    return NEEDS["hierarchy"].read(cfg.data).coarse_labels(classes)


def bind_requirements(cfg: Config) -> Config:
    """``cfg`` with its method's needs checked against its data and the values that follow filled in.

    Raises:
        MissingNeed: the data does not provide something the method needs (one line: what, and how to give it).
        UsageError: the data provides it in a file that cannot be read.
        ConfigError: a method value set by hand that contradicts the data (e.g. ``method.coarse_classes``).
    """
    provided = {}
    for name in cfg.method.requires():
        need = NEEDS[name]
        value = need.read(cfg.data)
        if value is None:
            raise MissingNeed(cfg.method.name, need, cfg.data.name)
        provided[name] = value
    method = cfg.method.with_data(provided)
    return cfg if method == cfg.method else dataclasses.replace(cfg, method=method)
