"""Group commit: the writes several threads want at once share one transaction and one commit, as databases do.

Each writer queues its write, then takes the ledger's lock. Whoever holds the lock (the leader) takes every write
queued so far and runs them in one transaction, each under a savepoint of its own, then commits once, synced when
any of them asked to be: N concurrent calls pay one BEGIN, one COMMIT and one fsync instead of N. A writer whose
write another leader ran finds it settled when it gets the lock, and returns at once. A writer returns only once
the transaction holding its write has committed (or with its own failure), so "recorded before the reply leaves"
holds for each of them. Alone, a writer leads a group of one, with no savepoint: it costs what a lone write did.

A write that fails on its own, before it changed anything the others depend on (`alone`), rolls back to its
savepoint and fails alone; anything else (the engine's error, a commit that fails) fails every write of the group,
and none of them claims a place in the chain.
"""

import collections
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ledger.budget import BudgetExhausted
from ledger.errors import LedgerError
from ledger.storage import Conn

__all__ = ["Queue", "Write", "alone", "drain", "settle"]

_T = TypeVar("_T")


class Write(Generic[_T]):
    """One thread's write, queued for whichever thread leads the next transaction; settled by that leader."""

    __slots__ = ("error", "result", "settled", "synced", "work")

    def __init__(self, work: Callable[[Conn], _T], synced: bool) -> None:
        self.work = work
        self.synced = synced
        self.settled = False
        self.result: _T | None = None
        self.error: BaseException | None = None

    def outcome(self) -> _T:
        """What the write returned once committed, or its failure, raised in the writer's own thread."""
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set by the leader when it committed


Queue = collections.deque[Write[Any]]
"""The writes waiting for a leader. A deque: threads append to it without the ledger's lock (append and popleft
are atomic), and only the lock's holder takes from it."""


def drain(queue: Queue) -> list[Write[Any]]:
    """Every write queued so far, taken by the leader (under the ledger's lock)."""
    taken = []
    while True:
        try:
            taken.append(queue.popleft())
        except IndexError:
            return taken


def alone(exc: BaseException, conn: Conn, engine_errors: tuple[type[BaseException], ...]) -> bool:
    """Whether `exc` failed one write alone, raised by this process before the engine saw anything wrong: a
    budget refused, a value the ledger cannot store. Rolled back to its savepoint, it leaves the transaction sound
    for the others. (An error the engine raised may have ended the transaction itself: that fails the group.)"""
    if isinstance(exc, BudgetExhausted):
        return True
    if isinstance(exc, LedgerError):
        return exc.reason == "value"
    return isinstance(exc, conn.unstorable) and not isinstance(exc, engine_errors)


def settle(writes: list[Write[Any]], failure: BaseException | None, where: str) -> None:
    """Settle the leader's group: with `failure` (the transaction's, or None once committed), every write that has
    no failure of its own fails with it. Each writer gets an exception of its own to raise in its own thread."""
    for write in writes:
        if failure is not None and write.error is None:
            write.error = _shared(failure, where)
        write.settled = True


def _shared(failure: BaseException, where: str) -> BaseException:
    if isinstance(failure, LedgerError):
        copy = LedgerError(str(failure), failure.reason)
        copy.__cause__ = failure.__cause__
        return copy
    # A bug in another write of the group: that writer raises it; this one only lost its transaction.
    return LedgerError(
        f"the ledger {where} could not record: another write in the same transaction failed ({type(failure).__name__})",
        "unavailable",
    )
