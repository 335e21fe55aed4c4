"""What is worked out from a store entry (its content scrubbed, its text for a prompt), kept while it holds.

A value is kept while the entry's content (its digest) and the secrets the scrubber knows are unchanged: a file
changed since, or a secret learnt since, is worked out afresh. Walking an inventory with the scrubber costs more
than reading it. Bounded; used from worker threads too, where the worst case is a value worked out twice.
"""

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from ledger import Scrubber
from server.stores import Entry

__all__ = ["Derived"]

_T = TypeVar("_T")


class Derived(Generic[_T]):
    """One thing worked out from an entry (`make`), called as `make` is and kept for as long as it holds."""

    def __init__(self, make: Callable[[Entry, Scrubber], _T], *, size: int = 64) -> None:
        self._make = make
        self._size = size
        self._values: dict[Hashable, _T] = {}

    def __call__(self, entry: Entry, scrubber: Scrubber) -> _T:
        source = entry.source
        if entry.digest is None:  # nothing says when it changes: worked out every time
            return self._make(entry, scrubber)
        # The digest of what was read, never a version number: Vault numbers a rewritten entry 1 again.
        key = (source.store, source.kind, source.name, entry.digest, scrubber.known)
        if (value := self._values.get(key)) is None:
            if len(self._values) >= self._size:
                self._values.clear()
            value = self._values[key] = self._make(entry, scrubber)
        return value
