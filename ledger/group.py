"""Group commit: the writes several threads want at once share one transaction and one commit, as databases do.

Each writer queues its write (or several, which stay together); the first to find no leader leads. The leader
takes every write queued so far and, under the ledger's lock, runs them in one transaction, each under a savepoint
of its own, then commits once, synced when any of them asked to be: N concurrent calls pay one BEGIN, one COMMIT
and one fsync instead of N. Writes queued meanwhile wait for the next leader, the first of them, woken as the lead
passes to it. A writer returns only once the transaction holding its write has committed (or with its own
failure), so "recorded before the reply leaves" holds for each of them. Alone, a writer leads a group of one, with
no savepoint: it costs what a lone write did.

A write that fails on its own, before it changed anything the others depend on (`alone`), rolls back to its
savepoint and fails alone; anything else (the engine's error, a commit that fails) fails every write of the group,
and none of them claims a place in the chain.
"""

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ledger.budget import BudgetExhausted
from ledger.errors import LedgerError
from ledger.storage import Conn

__all__ = ["Write", "Writers", "alone"]

_T = TypeVar("_T")


class Write(Generic[_T]):
    """One thread's write, queued for whichever thread leads the next transaction; settled by that leader."""

    __slots__ = ("error", "result", "settled", "synced", "wake", "work")

    def __init__(self, work: Callable[[Conn], _T], synced: bool) -> None:
        self.work = work
        self.synced = synced
        self.settled = False
        self.result: _T | None = None
        self.error: BaseException | None = None
        self.wake: threading.Lock | None = None

    @staticmethod
    def failed(error: BaseException) -> "Write[Any]":
        """A write settled before it was queued: its work could not even be made."""
        write: Write[Any] = Write(_unmade, synced=False)
        write.error, write.settled = error, True
        return write

    def settled_as(self) -> "_T | BaseException":
        """What the write returned once committed, or its failure, returned rather than raised."""
        return self.result if self.error is None else self.error  # type: ignore[return-value]  # as `outcome`

    def outcome(self) -> _T:
        """What the write returned once committed, or its failure, raised in the writer's own thread."""
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set by the leader when it committed


class Writers:
    """The writes waiting for a commit, and which thread leads the next one.

    Waiters do not queue on the ledger's lock: each sleeps on a lock of its own, which the leader releases once
    its write is settled (or to pass it the lead). So a leader wakes each of its writers directly, instead of each
    taking the ledger's lock in turn just to learn its write is done (a convoy through the GIL).
    """

    def __init__(self, commit: Callable[[list[Write[Any]]], None], lock: threading.Lock, where: str) -> None:
        """`commit` runs the writes it is given in one transaction, under `lock` (the ledger's, which its reads take
        too), keeping each write's own result or failure; it raises what failed the transaction as a whole."""
        self._commit = commit
        self._lock = lock
        self._where = where
        self._mutex = threading.Lock()
        self._waiting: list[Write[Any]] = []
        self._leading = False

    def run_all(self, writes: Sequence[Write[Any]]) -> None:
        """Queue `writes` (at least one) together, lead or wait for their commit, and return once each is settled.

        They are queued at once, so one leader takes them all: they share one transaction, each under its own
        savepoint, and the first of them carries the wait."""
        first = writes[0]
        with self._mutex:
            self._waiting.extend(writes)
            if self._leading:
                wake = first.wake = threading.Lock()
                wake.acquire()
            else:
                self._leading, wake = True, None
        if wake is not None:
            wake.acquire()  # released by the leader that settled these writes, or that passed them the lead
        if not first.settled:
            self._lead()

    def _lead(self) -> None:
        writes: list[Write[Any]] = []
        failure: BaseException | None = None
        try:
            with self._lock:  # the writes are taken once it is held: those queued while it was awaited join them
                with self._mutex:
                    writes, self._waiting = self._waiting, []
                self._commit(writes)
        except BaseException as exc:
            failure = exc
        finally:
            _settle(writes, failure, self._where)
            with self._mutex:
                following = self._waiting[0] if self._waiting else None
                self._leading = following is not None
            if following is not None:
                following.wake.release()  # type: ignore[union-attr]  # it waits: it came while this one led
            for write in writes:
                if write.wake is not None:
                    write.wake.release()


def _unmade(conn: Conn) -> None:
    raise AssertionError("a write that failed before it was queued is never run")


def alone(exc: BaseException, conn: Conn, engine_errors: tuple[type[BaseException], ...]) -> bool:
    """Whether `exc` failed one write alone, raised by this process before the engine saw anything wrong: a
    budget refused, a value the ledger cannot store. Rolled back to its savepoint, it leaves the transaction sound
    for the others. (An error the engine raised may have ended the transaction itself: that fails the group.)"""
    if isinstance(exc, BudgetExhausted):
        return True
    if isinstance(exc, LedgerError):
        return exc.reason == "value"
    return isinstance(exc, conn.unstorable) and not isinstance(exc, engine_errors)


def _settle(writes: list[Write[Any]], failure: BaseException | None, where: str) -> None:
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
