"""The one generic registry used by every family (shifts, attacks, metrics, models, recipes, suites, ...).

``Registry[T, M]`` maps a name to an object of type ``T`` with metadata of type ``M`` (a frozen
dataclass, never a dict). A duplicate name raises (timm only warns); names can be listed with a
shell-style filter as in ``timm.list_models("resnet*")``; an unknown name is a one-line
:class:`~shiftlab.core.errors.UnknownNameError` listing close matches.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from shiftlab.core.errors import UnknownNameError

T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T, M]):
    """One registered object with its name and metadata."""

    name: str
    obj: T
    meta: M


class Registry(Generic[T, M]):
    """A name -> (object, metadata) mapping for one family of components.

    Args:
        family: what the entries are, used in error messages ("shift", "attack", ...).
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, Entry[T, M]] = {}

    def register(self, name: str, meta: M) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name``; a duplicate name raises ValueError."""

        def decorator(obj: T) -> T:
            self.add(name, obj, meta)
            return obj

        return decorator

    def add(self, name: str, obj: T, meta: M) -> None:
        """Register ``obj`` under ``name`` without a decorator."""
        if name in self._entries:
            raise ValueError(f"{self.family} {name!r} is already registered")
        self._entries[name] = Entry(name, obj, meta)

    def entry(self, name: str) -> Entry[T, M]:
        """The entry for ``name``; an unknown name raises a UserError listing close matches."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(f"unknown {self.family} {name!r}.{hint} Known: {known}") from None

    def get(self, name: str) -> T:
        """The object registered under ``name``."""
        return self.entry(name).obj

    def meta(self, name: str) -> M:
        """The metadata registered with ``name``."""
        return self.entry(name).meta

    def names(self, filter: str | None = None) -> list[str]:
        """Registered names in registration order, optionally filtered by a shell pattern."""
        names = list(self._entries)
        if filter is not None:
            names = [n for n in names if fnmatch.fnmatchcase(n, filter)]
        return names

    def entries(self) -> list[Entry[T, M]]:
        """Every entry in registration order."""
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
