"""Local reads that arrive together share one worker-thread trip.

A local read (the embedded file store) is over in well under a millisecond, and most of what it costs is around
it: the trip to a worker thread and back, and the ledger's two transactions. Calls that arrive while a trip is
under way wait for the next one, which takes them all (up to `MOST`): their intents are committed in one
transaction, then each is read, then their outcomes are committed in one transaction, with one fsync. Each call
still has its intent committed before its read and its outcome committed before its reply; a call whose write
fails on its own fails alone (see `ledger.group`).

One trip runs at a time per gate, so the calls of a trip wait for the one before it: under load, the batches grow.
The cost of that: a read that hangs holds every local read queued behind it until it returns, where before it held
its own call and one worker thread. The store opens only regular files, without blocking, so a read hangs only
when the file system under the data folder does (a network mount that stopped answering), and then the reads
beside it hang too.
"""

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from contracts import AgentOutput
from ledger import Intent
from server.governance.outcome import CallContext
from server.governance.spec import ToolResult

__all__ = ["MOST", "LocalCall", "Trips"]

MOST = 32
"""The most calls one trip takes: a transaction, and the wait of the trip's last call, stay short."""


@dataclass(eq=False, slots=True)
class LocalCall:
    """A call whose capability is a local read, waiting for its trip; the trip sets `output` or `error`."""

    action: str
    read: Callable[[], ToolResult]
    intent: Intent
    context: CallContext
    output: AgentOutput | None = None
    error: BaseException | None = None
    leads: bool = False
    """Told, when woken, to run the next trip."""
    done: anyio.Event | None = None
    """Set once its trip has ended, for a call that waits for one (the call that runs a trip has none)."""

    def result(self) -> AgentOutput:
        if self.error is not None:
            raise self.error
        assert self.output is not None  # a trip sets one or the other for each of its calls
        return self.output


class Trips:
    """The local calls of one gate, queued for trips. `run` is a trip's work, for a worker thread: it sets each
    call's output (or error). `in_thread` runs it there (`take` shields it from cancellation)."""

    def __init__(
        self,
        run: Callable[[Sequence[LocalCall]], None],
        in_thread: Callable[[Callable[[], None]], Awaitable[None]],
    ) -> None:
        self._run = run
        self._in_thread = in_thread
        self._queue: list[LocalCall] = []
        self._running = False

    async def take(self, call: LocalCall) -> AgentOutput:
        """Queue `call` for the next trip and return its output once its outcome is recorded. When no trip runs,
        this call runs one; else it waits, to be either answered or told to run the next."""
        with anyio.CancelScope(shield=True):  # once queued, a call ends with its outcome recorded
            if self._running:
                done = call.done = anyio.Event()
                self._queue.append(call)
                await done.wait()
                if not call.leads:
                    return call.result()
            else:
                self._running = True
                self._queue.append(call)
            await self._trip()
        return call.result()

    async def _trip(self) -> None:
        """Run one trip for the calls queued now, then pass the lead to the first call queued since, if any."""
        trip, self._queue = self._queue[:MOST], self._queue[MOST:]
        try:
            await self._in_thread(functools.partial(self._run, trip))
        except BaseException as exc:  # the trip itself failed (a bug): each call it had not ended fails with it
            for call in trip:
                if call.output is None and call.error is None:
                    call.error = exc
        finally:
            if self._queue:
                following = self._queue[0]
                following.leads = True
                following.done.set()  # type: ignore[union-attr]  # queued while a trip ran: it waits
            else:
                self._running = False
            for call in trip:
                if call.done is not None:
                    call.done.set()
