"""The monitoring a served process feeds, started with it and stopped (its last figures flushed) when it stops:
Prometheus when PLANNER_MCP_METRICS_PORT is set, OpenTelemetry when the standard OTEL_* variables ask for it.

Each is imported only when asked for, so a server with telemetry off loads none of it. Monitoring that cannot
start is reported on stderr and the server serves without it: it is not the audit record, the ledger is.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

from server.app.runtime import server_version
from server.config.settings import Settings
from server.telemetry import NO_SIGNALS, Fanout, Signals, TelemetryUnavailable

__all__ = ["start_telemetry"]

logger = logging.getLogger("server.telemetry")

_Start = Callable[[], AbstractContextManager[Signals]]


@contextmanager
def start_telemetry(settings: Settings) -> Iterator[Signals]:
    """What the call path tells monitoring for the life of this block: `NO_SIGNALS` when none is configured."""
    listeners: list[Signals] = []
    with ExitStack() as stack:
        for what, start in _asked(settings):
            try:
                listeners.append(stack.enter_context(start()))
            except TelemetryUnavailable as exc:
                logger.error("%s is off: %s", what, exc)
        if not listeners:
            yield NO_SIGNALS
        else:
            yield listeners[0] if len(listeners) == 1 else Fanout(listeners)


def _asked(settings: Settings) -> Iterator[tuple[str, _Start]]:
    telemetry = settings.telemetry
    if telemetry.metrics is not None:
        host, port = telemetry.metrics

        def prometheus() -> AbstractContextManager[Signals]:
            from server.telemetry.prometheus import prometheus_signals

            return prometheus_signals(host, port, version=server_version())

        yield "Prometheus metrics (PLANNER_MCP_METRICS_PORT)", prometheus
    if telemetry.otel is not None:

        def otel() -> AbstractContextManager[Signals]:
            from server.telemetry.otel import otel_signals

            return otel_signals(version=server_version())

        yield f"OpenTelemetry ({telemetry.otel})", otel
