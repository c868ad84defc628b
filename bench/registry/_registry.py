"""A name -> entry registry that refuses duplicates and lists by glob pattern (timm-style)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bench.errors import UnknownNameError, closest

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda entry: self.add(name, entry)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names())
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'{closest(name, self._entries)} (known: {known})"
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def expand(self, pattern: str) -> list[str]:
        """Names matching a glob; a plain name must exist. Raises with a suggestion."""
        if not any(ch in pattern for ch in "*?["):
            self.get(pattern)
            return [pattern]
        matched = self.names(pattern)
        if not matched:
            known = ", ".join(self.names())
            raise UnknownNameError(f"no {self.kind} matches '{pattern}' (known: {known})")
        return matched

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
