"""Writes made by several threads at once, all queued before any of them runs, so one leader commits them together."""

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ledger import Ledger
from ledger.storage import Location
from tests.conftest import until

__all__ = ["opened", "together"]

_JOIN_S = 30


@contextlib.contextmanager
def opened(location: Location) -> Iterator[Ledger]:
    """A ledger opened (so its first write is not also its opening), closed on leaving."""
    ledger = Ledger(location, busy_timeout_s=_JOIN_S)
    try:
        ledger.open()
        yield ledger
    finally:
        ledger.close()


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
