"""The search space of ``insvp sweep``: grids and ranges, from recipes, ``--grid`` / ``--range`` or the default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ...common.errors import ConfigError, UsageError
from ...common.tables import short_value
from ...common.yamlio import safe_load
from ...config.overrides import flatten
from ...config.schema import Config
from ...resolve.recipes import SWEEP_KEY

GridValue = str | int | float | bool | None

def default_space(cfg: Config) -> dict[str, list[Any]]:
    """The search space when neither the recipes' sweep sections nor ``--grid`` / ``--range`` give one: the
    method's default grid under its protocol (:meth:`~insvp_cli.config.schema.MethodConfig.default_grid`)."""
    return cfg.method.default_grid(cfg.data.batch_size)


@dataclass(frozen=True)
class Dimension:
    """One swept config key: a grid of ``values``, or a range ``[low, high]`` (log-uniform with ``log``).

    Attributes:
        key: the config key path, e.g. ``train.lr``; also the Optuna parameter name.
        values: the grid (empty for a range).
        low, high: the range (``None`` for a grid).
        log: sample the range log-uniformly.
        integer: the key holds an integer (``method.prompt_len``): the range is sampled as integers.
    """

    key: str
    values: tuple[GridValue, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def is_grid(self) -> bool:
        return self.low is None

    def describe(self) -> str:
        if self.is_grid:
            return f"{self.key}=[{', '.join(short_value(v) for v in self.values)}]"
        return f"{self.key}={short_value(self.low)}:{short_value(self.high)}" + (":log" if self.log else "")

    def to_json(self) -> dict[str, Any]:
        if self.is_grid:
            return {"key": self.key, "values": list(self.values)}
        return {"key": self.key, "low": self.low, "high": self.high, "log": self.log, "integer": self.integer}

    def suggest(self, trial) -> GridValue:
        """This dimension's value in an Optuna trial."""
        if self.is_grid:
            return trial.suggest_categorical(self.key, list(self.values))
        if self.integer:
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)


def parse_grid(text: str) -> tuple[str, Any]:
    """``KEY=[v1, v2, ...]`` (values in YAML) -> ``(KEY, [v1, v2, ...])``."""
    key, sep, raw = text.partition("=")
    try:
        values = safe_load(raw) if sep else None
    except yaml.YAMLError as exc:
        raise UsageError(f"--grid {text!r}: the values are not valid YAML ({exc.problem})") from None
    if not key.strip() or not isinstance(values, list):
        raise UsageError(f"--grid {text!r}: expected KEY=[v1, v2, ...], e.g. train.lr=[0.001, 0.01]")
    return key.strip(), values


def parse_range(text: str) -> tuple[str, str]:
    """``KEY=LOW:HIGH[:log]`` -> ``(KEY, "LOW:HIGH[:log]")``; the range itself is checked with its key."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise UsageError(f"--range {text!r}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log, e.g. train.lr=1e-4:1e-1:log")
    return key.strip(), raw.strip()


def section_space(recipes: Sequence[dict[str, Any]], method: str, names: Sequence[str]) -> dict[str, Any]:
    """The search space of ``method`` in the recipes' ``sweep:`` sections (later recipes win, key by key).

    A section maps config keys to grids (``[v1, v2]``) or ranges (``"LOW:HIGH[:log]"``); its ``methods: {M:
    {...}}`` entries apply to method M only and win over the section's other keys.
    """
    from ...methods import METHODS

    common: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for tree, name in zip(recipes, names, strict=True):
        section = tree.get(SWEEP_KEY)
        if section is None:
            continue
        per_method = section.get("methods", {}) if isinstance(section, dict) else None
        if not isinstance(per_method, dict) or any(not isinstance(v, dict) for v in per_method.values()):
            raise UsageError(f"recipe {name}: sweep: expected a mapping of config keys to grids [v1, v2] or ranges "
                             "'LOW:HIGH[:log]', with optional methods: {METHOD: {...}}")
        unknown = [m for m in per_method if m not in METHODS]
        if unknown:
            raise UsageError(f"recipe {name}: sweep.methods.{unknown[0]}: unknown method; valid: "
                             f"{', '.join(METHODS.names())}")
        common.update({k: v for k, v in section.items() if k != "methods"})
        own.update(per_method.get(method, {}))
    return {**common, **own}


def build_space(raw: dict[str, Any], check, fixed: Sequence[str]) -> tuple[Dimension, ...]:
    """Checked dimensions, sorted by key, from ``{key: [grid] or "LOW:HIGH[:log]"}``.

    Args:
        raw: the search space as written.
        check: ``check(key, value) -> Config``: resolves the trials' config with ``key`` set to ``value``;
            raises :class:`ConfigError` for an unknown key or a value of the wrong type.
        fixed: keys that the protocol or the user's ``--set`` fix, which cannot be swept.

    Raises:
        UsageError: an empty or repeated grid, a value that is not a scalar or that the config rejects, a
            range that is not ``LOW < HIGH`` (both > 0 for ``log``), a fixed key.
    """
    dims = []
    for key in sorted(raw):
        spec = raw[key]
        where = f"sweep {key}"
        if key in fixed:
            raise UsageError(f"{where}: {key} is fixed by --set or by the sweep protocol; leave it out of one of them")
        try:
            if isinstance(spec, list):
                dims.append(_grid_dimension(key, spec, check, where))
            elif isinstance(spec, str):
                dims.append(_range_dimension(key, spec, check, where))
            else:
                raise UsageError(f"{where}: {spec!r} is neither a grid [v1, v2, ...] nor a range 'LOW:HIGH[:log]'")
        except ConfigError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return tuple(dims)


def _grid_dimension(key: str, values: list[Any], check, where: str) -> Dimension:
    if not values:
        raise UsageError(f"{where}: the grid is empty; give at least one value, e.g. {key}=[0.001, 0.01]")
    for value in values:
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise UsageError(f"{where}: {value!r} is not a number, string, boolean or null (grid values are scalars)")
        check(key, value)
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise UsageError(f"{where}: {repeated[0]!r} is in the grid twice")
    return Dimension(key, tuple(values))


def _range_dimension(key: str, text: str, check, where: str) -> Dimension:
    parts = text.split(":")
    log = parts[-1].strip() == "log"
    bounds = parts[:-1] if log else parts
    try:
        low, high = (_number(b) for b in bounds)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not LOW:HIGH or LOW:HIGH:log with numbers, e.g. 1e-4:1e-1:log"
                         ) from None
    if not low < high or (log and low <= 0):
        raise UsageError(f"{where}: {text!r} needs LOW < HIGH" + (" and LOW > 0 for :log" if log else ""))
    check(key, high)
    # the config decides: an integer key (method.prompt_len) takes integer bounds only, a float key widens them
    integer = isinstance(flatten(check(key, low).to_dict()).get(key), int)
    return Dimension(key, low=low, high=high, log=log, integer=integer)


def _number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return float(text)

