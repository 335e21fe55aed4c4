"""Progress notifications for long calls, sent only when the client asked for them with a progress token.

Progress is measured in seconds spent out of the call's time limit, so a host can draw a bar that reaches
the end exactly when the call would time out, and the message says what the call is waiting for.
"""

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

__all__ = ["Progress", "ReportProgress"]

logger = logging.getLogger("server.progress")  # its name before the regrouping: log collectors filter by it

ReportProgress = Callable[[float, float | None, str | None], Awaitable[None]]
"""Sends one notification: progress, total, message (the SDK's `Context.report_progress`)."""


class Progress:
    def __init__(self, report: ReportProgress | None = None) -> None:
        """Without `report` (no progress token, or the CLI) every method is a cheap no-op."""
        self._report = report
        self._started = time.monotonic()
        self._last = 0.0
        self._total: float | None = None
        self._message = ""

    async def say(self, message: str, *, total: float | None = None) -> None:
        """Report what the call is doing now; `total` is its time limit in seconds, when it has one."""
        self._message = message
        if total is not None:
            self._total = total
        await self._send()

    async def _send(self) -> None:
        if self._report is None:
            return
        # The spec asks for a value that increases with every notification.
        value = max(round(time.monotonic() - self._started, 3), self._last + 0.001)
        self._last = value
        try:
            await self._report(value, self._total, self._message)
        except Exception as exc:  # a client that cannot take a notification must not fail the call
            logger.debug("Progress notification not sent: %s", exc)

    async def _beat(self, interval_s: float) -> None:
        while True:
            await anyio.sleep(interval_s)
            await self._send()

    @asynccontextmanager
    async def heartbeat(self, interval_s: float) -> AsyncIterator[None]:
        """Repeat the current message every `interval_s` while the body waits on something slow."""
        if self._report is None:
            yield
            return
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._beat, interval_s)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        except BaseExceptionGroup as errors:
            # The heartbeat never raises, so the body's own failure is the only one: let it out as itself.
            if len(errors.exceptions) == 1:
                raise errors.exceptions[0] from None
            raise
