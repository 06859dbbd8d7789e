"""A small name -> object registry that rejects duplicates and lists the valid names on a miss."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries (methods, datasets).

    Args:
        kind: what the entries are, used in error messages ("method", "dataset").
        populate: called once, before the first look-up, to import the modules that register the entries (so that
            importing the registry itself stays cheap).
    """

    def __init__(self, kind: str, populate: Callable[[], None] | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._populate = populate

    def _entries_now(self) -> dict[str, T]:
        if self._populate is not None:
            populate, self._populate = self._populate, None
            populate()
        return self._entries

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries_now()[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries_now())

    def __contains__(self, name: object) -> bool:
        return name in self._entries_now()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
