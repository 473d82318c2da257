"""A tiny name -> class registry whose errors name the option and its allowed values."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, option: str) -> None:
        self.option = option
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.option}: '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (e.g. a test's throwaway entry); KeyError if it is not registered."""
        del self._items[name]

    def get(self, name: str) -> T:
        if name not in self._items:
            close = difflib.get_close_matches(str(name), self.names(), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{self.option}={name!r} is not a valid choice; "
                f"allowed: {', '.join(self.names())}{hint}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
