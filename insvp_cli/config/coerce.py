"""Building dataclasses from plain data (YAML, ``--set``), with errors that name the key path.

Every numeric key carries its valid range (:func:`bounded`) and every choice its set (``Literal``);
:func:`build_dataclass` checks both, so a bad value is an error that names the key path and what would be
valid before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ..common.errors import ConfigError


@dataclass(frozen=True)
class Bounds:
    """The valid range of a numeric config value (any bound may be absent)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def describe(self) -> str:
        low = f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None else None
        high = f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None else None
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>=' if self.ge is not None else '>'} {low[1:]}"
        return f"{'<=' if self.le is not None else '<'} {high[:-1]}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def bounded(default: Any = None, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, default_factory: Any = None) -> Any:
    """A dataclass field whose value (or each item of a list value) must lie in the given range; ``None`` passes.

    Example: ``lr: float = bounded(1e-3, gt=0)``.
    """
    meta = {"bounds": Bounds(ge, gt, le, lt)}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


# a float as people write it: YAML 1.1 (what PyYAML reads) parses `1e-3` as a string, not a number
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Return ``value`` checked against the annotation ``tp`` (ints widen to floats)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: {value!r} is not of type {' | '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not a valid choice; valid: {', '.join(map(str, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: {value!r} is not a list")
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {value!r} is not a mapping")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {value!r} is not a boolean (true/false)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: {value!r} is not an integer")
        return value
    if tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: {value!r} is not a number")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: {value!r} is not a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {value!r} is not a string")
        return value
    raise TypeError(f"{path}: unsupported annotation {tp!r}")


def _check_bounds(value: Any, bounds: Bounds, path: str) -> None:
    for i, item in enumerate(value if isinstance(value, list) else [value]):
        if item is not None and not bounds.contains(item):
            where = f"{path}[{i}]" if isinstance(value, list) else path
            raise ConfigError(f"{where}: {item} is not {bounds.describe()}")


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, validating every key, type and range."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of {', '.join(f.name for f in dataclasses.fields(cls))}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; valid keys: {', '.join(fields)}")
    kwargs = {}
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else key
        kwargs[key] = _coerce(value, hints[key], key_path)
        if "bounds" in fields[key].metadata:
            _check_bounds(kwargs[key], fields[key].metadata["bounds"], key_path)
    return cls(**kwargs)
