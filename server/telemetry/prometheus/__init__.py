"""Prometheus metrics on a listener of their own (`PLANNER_MCP_METRICS_PORT`), in stdio mode as over HTTP.

`prometheus_signals(host, port, version)` is a context manager: it binds the port and starts the listener on
entry, yields the `Signals` the call path tells, and stops the listener on exit. A port it cannot bind (one in
use, say) is logged as an error, on stderr, and it yields `NO_SIGNALS`: the server serves MCP as before, since
metrics are not the audit record (the ledger is).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from server.telemetry.prometheus.listener import MetricsListener
from server.telemetry.prometheus.metrics import PrometheusSignals
from server.telemetry.prometheus.registry import CONTENT_TYPE
from server.telemetry.signals import NO_SIGNALS, Signals

__all__ = ["CONTENT_TYPE", "MetricsListener", "PrometheusSignals", "prometheus_signals"]

logger = logging.getLogger(__name__)


@contextmanager
def prometheus_signals(host: str, port: int, version: str) -> Iterator[Signals]:
    """The metrics' `Signals`, served at http://host:port/metrics while the block runs."""
    signals = PrometheusSignals(version)
    try:
        listener = MetricsListener.open(host, port, signals.exposition)
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        logger.error(
            "Metrics are not served: PLANNER_MCP_METRICS_PORT %s cannot be listened on (%s). MCP is served as "
            "usual; choose a free port (or unset the variable) and restart to have metrics.",
            where,
            exc.strerror or exc,
        )
        yield NO_SIGNALS
        return
    with listener:
        host, port = listener.address
        logger.info("Metrics at http://%s:%d/metrics", f"[{host}]" if ":" in host else host, port)
        yield signals
