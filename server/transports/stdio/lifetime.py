"""How a server on stdio stops: when the host closes stdin, or at once on SIGINT or SIGTERM.

A host stops a server by closing its stdin, then by SIGTERM; a person at a terminal presses Ctrl-C. The SDK reads
stdin in a worker thread that no cancellation can interrupt, so a signal used to wait for the host's next line:
SIGINT did nothing until stdin closed, and at a terminal it took three Ctrl-C and ended in a traceback. Here
stdin is read on the event loop when it is a pipe or a socket (see `wire`), and otherwise (a terminal, a file) by
a daemon thread, which a blocked read never keeps alive; either way the first SIGINT or SIGTERM cancels
the serving: each call in flight is recorded as CANCELLED by the gate, the runtime closes the ledger, and the
process exits with status 0, as a server asked to stop (and `serve --transport http` under uvicorn) does.
"""

import io
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import BinaryIO, Self

import anyio
import anyio.from_thread
import anyio.lowlevel

from server.call.stopping import begin_stop

__all__ = ["StdinLines", "serve_until_signalled"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StdinLines:
    """The lines of `source` (the process's stdin), for `stdio_server(stdin=...)`, read by a daemon thread: for a
    terminal or a file, whose blocking the loop cannot wait on."""

    def __init__(self, source: BinaryIO | None = None) -> None:
        # A file of its own over a duplicate of fd 0: the interpreter, exiting, closes sys.stdin, which it could not
        # while the daemon thread holds it in a read. Never closed, as the thread may still be reading it.
        source = source or os.fdopen(os.dup(sys.stdin.fileno()), "rb", closefd=False)
        # Decoded as the SDK decodes stdin: UTF-8, an undecodable byte replaced rather than fatal.
        self._text = io.TextIOWrapper(source, encoding="utf-8", errors="replace")
        self._send, self._receive = anyio.create_memory_object_stream[str](0)
        self._started = False

    def __aiter__(self) -> Self:
        if not self._started:
            self._started = True
            token = anyio.lowlevel.current_token()
            threading.Thread(target=self._read, args=(token,), name="planner-mcp stdin", daemon=True).start()
        return self

    async def __anext__(self) -> str:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def _read(self, token: anyio.lowlevel.EventLoopToken) -> None:
        """Hand each line to the event loop, one at a time (the host waits while the server is busy); at EOF
        end the stream. Once the loop or the reader is gone there is no one to hand a line to: stop."""
        try:
            while line := self._text.readline():
                try:  # the loop is usually waiting for the line: handed over without a task of its own
                    anyio.from_thread.run_sync(self._send.send_nowait, line, token=token)
                except anyio.WouldBlock:  # the server is busy: wait until it takes the line
                    anyio.from_thread.run(self._send.send, line, token=token)
            anyio.from_thread.run_sync(self._send.close, token=token)
        except (RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ValueError):
            return


async def serve_until_signalled(serve: Callable[[], Awaitable[None]]) -> None:
    """Run `serve` until it returns or the first SIGINT or SIGTERM cancels it.

    The signals stay this function's until `serve` has unwound (the gate recording each call in flight, the
    runtime closing the ledger): a second Ctrl-C is then ignored, not a KeyboardInterrupt that cuts that short.
    """
    if sys.platform == "win32":  # no signal receiver there: Ctrl-C stays a KeyboardInterrupt
        await serve()
        return
    with anyio.open_signal_receiver(*_STOP_SIGNALS) as signals:
        async with anyio.create_task_group() as serving:

            async def stop_at_the_first() -> None:
                async for signum in signals:
                    begin_stop(signal.Signals(signum).name)
                    serving.cancel_scope.cancel()
                    return

            serving.start_soon(stop_at_the_first)
            await serve()
            serving.cancel_scope.cancel()
