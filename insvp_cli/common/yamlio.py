"""YAML written by users (recipes, a run's ``config.yaml``, hierarchy files, ``--sources``, ``--set`` values), read
one way: safely (no tags that build objects), with duplicate keys refused, and with every error in one line
``FILE:LINE:COL: problem``.

PyYAML keeps the last of two equal keys without a word (``epochs: 1`` then ``epochs: 2`` in one group is
``epochs: 2``), and reports a syntax error in four to seven lines that point at ``<unicode string>``; a recipe
that silently means something else, or an error that does not name the file, is what this module prevents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from .errors import ConfigError, UsageError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that holds a key twice (a ``<<`` merge may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base class reports it with its position
                    continue
                if first is not key_node:
                    raise ConstructorError(
                        None, None, f"duplicate key {key!r} (first at line {first.start_mark.line + 1}); "
                                    "a key may appear once per mapping", key_node.start_mark)
        return super().construct_mapping(node, deep)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with duplicate keys refused; raises ``yaml.YAMLError`` (see :func:`describe`)."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def describe(exc: yaml.YAMLError, source: str) -> str:
    """``source:line:col: problem (context at line:col)``, one line, from a PyYAML error (lines count from 1)."""
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{source}: {' '.join(str(exc).split())}"
    mark = exc.problem_mark
    text = f"{source}:{mark.line + 1}:{mark.column + 1}: {' '.join((exc.problem or 'not valid YAML').split())}"
    if exc.context:
        where = f" at {exc.context_mark.line + 1}:{exc.context_mark.column + 1}" if exc.context_mark else ""
        text += f" ({' '.join(exc.context.split())}{where})"
    return text


def load_yaml(text: str, source: str) -> Any:
    """Parse ``text`` (read from ``source``, named in errors).

    Raises:
        ConfigError: not valid YAML, or a duplicate key: ``source:line:col: problem``.
    """
    try:
        return safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(describe(exc, source)) from None


def read_yaml(path: str | Path) -> Any:
    """Read and parse the YAML file ``path``.

    Raises:
        UsageError: the file cannot be read or is not text (named); ConfigError: not valid YAML, or a duplicate key
        (``path:line:col: problem``).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start}); a YAML file was expected") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return load_yaml(text, str(path))
