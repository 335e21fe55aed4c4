"""Blocking work for a call, in worker threads, never before the call's intent is in the ledger.

The gate does not write a call's intent on its own trip to a worker thread: it arms a `PendingIntent`,
and the call's first blocking step writes it in the same trip, just before its own work (a file read, a
ledger query). A step that waits on the network instead (Vault, the LLM) first awaits `intent_recorded()`.
Either way nothing is read and no LLM is asked before the intent is committed, and a call that cannot
record its intent (or is refused by what its intent's transaction checks, such as a token budget) reads
nothing: the error comes out of the step that would have read. A trip to a thread costs about as much as
the rest of a local read, so each one saved shows in `python -m bench --only reads`. (A read on the
embedded store goes further: the gate runs it whole, intent to outcome, in one trip, shared with the reads that
arrive with it; see `ToolSpec.local` and `server.governance.trips`.)

Every store, tool and LLM path goes through here rather than `anyio.to_thread` (ruff bans it elsewhere).
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import anyio.to_thread

from ledger import Position

__all__ = ["PendingIntent", "intent_recorded", "pending_intent", "run_blocking"]

_T = TypeVar("_T")


class PendingIntent:
    """The intent of the call in progress: written once, by whichever step needs it first."""

    def __init__(self, write: Callable[[], Position]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._error: Exception | None = None
        self.position: Position | None = None

    def write(self) -> Position:
        """Write the intent unless it is written; blocking, so called in a worker thread. A write that failed
        (or refused the call) is not tried again: every later step of the call fails the same way."""
        with self._lock:
            if self._error is not None:
                raise self._error
            if self.position is None:
                try:
                    self.position = self._write()
                except Exception as exc:
                    self._error = exc
                    raise
            return self.position


_PENDING: ContextVar[PendingIntent | None] = ContextVar("planner_mcp_pending_intent", default=None)


@contextmanager
def pending_intent(write: Callable[[], Position]) -> Iterator[PendingIntent]:
    """Arm the intent for the steps of the call run inside this block."""
    pending = PendingIntent(write)
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


async def run_blocking(function: Callable[[], _T]) -> _T:
    """Run `function` in a worker thread, the call's intent (if not yet written) written first, in that thread."""
    pending = _PENDING.get()
    if pending is None or pending.position is not None:
        return await anyio.to_thread.run_sync(function)

    def after_intent() -> _T:
        pending.write()
        return function()

    return await anyio.to_thread.run_sync(after_intent)


async def intent_recorded() -> None:
    """Before a step that reaches the network: the call's intent is committed, or `LedgerError` says why not."""
    pending = _PENDING.get()
    if pending is not None and pending.position is None:
        await anyio.to_thread.run_sync(pending.write)
