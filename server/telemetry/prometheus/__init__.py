"""Prometheus metrics on a listener of their own (`PLANNER_MCP_METRICS_PORT`), in stdio mode as over HTTP.

`prometheus_signals(host, port, version)` is a context manager: it binds the port and starts the listener on
entry, yields the `Signals` the call path tells, and stops the listener on exit. A port it cannot bind (one in
use, say) raises `TelemetryUnavailable` on entry, saying so: the server then serves MCP without metrics, since
metrics are not the audit record (the ledger is).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from server.telemetry.prometheus.listener import MetricsListener
from server.telemetry.prometheus.metrics import PrometheusSignals
from server.telemetry.prometheus.registry import CONTENT_TYPE
from server.telemetry.signals import TelemetryUnavailable

__all__ = ["CONTENT_TYPE", "MetricsListener", "PrometheusSignals", "prometheus_signals"]

logger = logging.getLogger(__name__)


@contextmanager
def prometheus_signals(host: str, port: int, version: str) -> Iterator[PrometheusSignals]:
    """The metrics' `Signals`, served at http://host:port/metrics while the block runs."""
    signals = PrometheusSignals(version)
    try:
        listener = MetricsListener.open(host, port, signals.exposition)
    except OSError as exc:
        raise TelemetryUnavailable(
            f"{_shown(host, port)} cannot be listened on ({exc.strerror or exc}). MCP is served as usual; choose a "
            "free port (or unset PLANNER_MCP_METRICS_PORT) and restart to have metrics."
        ) from exc
    with listener:
        logger.info("Metrics at http://%s/metrics", _shown(*listener.address))
        yield signals


def _shown(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
