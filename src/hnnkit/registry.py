"""One mechanism for the name → entry registries (systems, models, tasks).

A :class:`Registry` reads like a read-only dict in registration order (``name in reg``,
``reg[name]``, iteration, ``.items()``); it is changed only through :meth:`Registry.register`
and :meth:`Registry.unregister`, and :meth:`Registry.lookup` raises
:class:`~hnnkit.errors.UnknownNameError` listing the valid names. Each package keeps its own
public functions (``register_model``, ``get_task``, …) on top of one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

from .errors import HnnkitValueError, UnknownNameError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Entries by name, in registration order.

    Args:
        kind: what an entry is (``"model"``, ``"task"``), for messages.
        same: whether a new entry is the one already registered (e.g. a module imported
            twice defines it again); such a registration is always allowed. Default: identity.
        owner: where an entry comes from, shown when a name is taken.
    """

    def __init__(
        self,
        kind: str,
        *,
        same: Callable[[T, T], bool] | None = None,
        owner: Callable[[T], str] | None = None,
    ) -> None:
        self.kind = kind
        self._same = same or (lambda a, b: a is b)
        self._owner = owner
        self._entries: dict[str, T] = {}

    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"

    def register(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` as ``name`` and return it.

        Raises:
            HnnkitValueError: if another entry holds ``name`` (unless ``replace`` or ``same``).
        """
        old = self._entries.get(name)
        if old is not None and not replace and not self._same(old, entry):
            by = f" (by {self._owner(old)})" if self._owner is not None else ""
            raise HnnkitValueError(
                f"{self.kind} {name!r} is already registered{by}; choose another name, or pass "
                "replace=True to replace it"
            )
        self._entries[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry of ``name``.

        Raises:
            UnknownNameError: if ``name`` is not registered (the message lists the valid names).
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.kind, name, self._entries) from None

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its entry.

        Raises:
            UnknownNameError: if ``name`` is not registered.
        """
        entry = self.lookup(name)
        del self._entries[name]
        return entry


__all__ = ["Registry"]
