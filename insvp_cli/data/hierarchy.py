"""Coarse-label hierarchies: the coarse class of each class of a dataset (what TransHP's prompts learn from).

A hierarchy is a YAML or JSON file in one of two forms::

    # grouped: coarse label -> its classes          # flat: class -> coarse label
    even: [0, 2, 4, 6, 8]                          apple: fruit_and_vegetables
    odd: [1, 3, 5, 7, 9]                           beaver: aquatic_mammals

A class is named as the dataset names it (the ``classes`` of the run, e.g. ``apple`` or ``7``) or given by its
label index; names are looked up first. Coarse labels are any names or numbers; their order is the order in
which the file first mentions them. A file may name more classes than a run keeps (``data.classes``).

Where a run's hierarchy comes from (:func:`hierarchy_file`): ``data.hierarchy``; else ``hierarchy.yaml``,
``hierarchy.yml`` or ``hierarchy.json`` in ``data.root``; else the dataset's built-in file in
``insvp_cli/data/hierarchies/`` (``cifar100``: CIFAR-100's 20 superclasses). This module imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..common.errors import UsageError
from ..common.yamlio import read_yaml
from ..config.schema import DataConfig

BUILTIN = Path(__file__).resolve().parent / "hierarchies"
ROOT_FILES = ("hierarchy.yaml", "hierarchy.yml", "hierarchy.json")


@dataclass(frozen=True)
class Hierarchy:
    """A hierarchy file, read.

    Attributes:
        path: the file.
        coarse: the coarse labels, in the file's order; coarse class ``c`` is ``coarse[c]``.
        parent: class (name or label index, as text) -> its coarse label.
    """

    path: Path
    coarse: list[str]
    parent: dict[str, str]

    def coarse_labels(self, classes: Sequence[str]) -> list[int]:
        """The coarse class of each of ``classes`` (``classes[i]`` names label ``i``).

        Raises:
            UsageError: a class the file does not map, by name or by label index.
        """
        index = {name: c for c, name in enumerate(self.coarse)}
        out = []
        for label, name in enumerate(classes):
            parent = self.parent.get(name, self.parent.get(str(label)))
            if parent is None:
                raise UsageError(f"hierarchy {self.path}: class {name!r} (label {label}) has no coarse label; the "
                                 f"file maps {len(self.parent)} classes, e.g. {', '.join(list(self.parent)[:3])}")
            out.append(index[parent])
        return out


def hierarchy_file(cfg: DataConfig) -> Path | None:
    """The hierarchy file of ``cfg``'s data (see the module docstring), or ``None`` when it has none."""
    if cfg.hierarchy is not None:
        return Path(cfg.hierarchy).expanduser()
    if cfg.root is not None:
        root = Path(cfg.root).expanduser()
        found = next((root / name for name in ROOT_FILES if (root / name).is_file()), None)
        if found is not None:
            return found
    builtin = BUILTIN / f"{cfg.name}.yaml"
    return builtin if builtin.is_file() else None


def read_hierarchy(path: Path) -> Hierarchy:
    """Read and check a hierarchy file.

    Raises:
        UsageError: a missing or unreadable file, or one that is not one of the two forms.
    """
    if not path.is_file():
        raise UsageError(f"hierarchy {path} does not exist (data.hierarchy: a YAML or JSON file mapping classes "
                         "to coarse labels)")
    if path.suffix != ".json":
        data = read_yaml(path)
    else:
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UsageError(f"hierarchy {path} cannot be read ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(data, dict) or not data:
        raise UsageError(f"hierarchy {path}: expected a mapping of class -> coarse label or coarse label -> "
                         "[classes]")
    grouped = [isinstance(v, list) for v in data.values()]
    if any(grouped) and not all(grouped):
        raise UsageError(f"hierarchy {path}: mixes the two forms; give either class -> coarse label for every "
                         "class or coarse label -> [classes] for every coarse label")
    pairs = ([(str(c), str(coarse)) for coarse, members in data.items() for c in members] if all(grouped)
             else [(str(c), str(coarse)) for c, coarse in data.items()])
    parent: dict[str, str] = {}
    for name, coarse in pairs:
        if parent.setdefault(name, coarse) != coarse:
            raise UsageError(f"hierarchy {path}: class {name!r} is in two coarse classes ({parent[name]}, {coarse})")
    return Hierarchy(path, list(dict.fromkeys(parent.values())), parent)
