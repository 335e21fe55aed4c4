"""Writes made by several threads at once, all queued before any of them runs, so one leader commits them together."""

import threading
from collections.abc import Callable, Sequence
from typing import Any

from ledger import Ledger
from tests.conftest import until

__all__ = ["together"]

_JOIN_S = 30


async def together(ledger: Ledger, writes: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run each of `writes` in a thread of its own while the test holds the ledger's lock, and let go only once
    every one is queued: the first thread, leading, then takes them all into one transaction. Each write's result,
    or the exception it raised, in order."""
    done: list[Any] = [None] * len(writes)

    def run(i: int, write: Callable[[], Any]) -> None:
        try:
            done[i] = write()
        except Exception as exc:
            done[i] = exc

    threads = [threading.Thread(target=run, args=(i, write)) for i, write in enumerate(writes)]
    with ledger._lock:
        for thread in threads:
            thread.start()
        await until(lambda: len(ledger._writers._waiting) == len(writes))
    for thread in threads:
        thread.join(_JOIN_S)
        assert not thread.is_alive(), "a writer did not return"
    return done
