"""OpenTelemetry traces and metrics, on when the standard `OTEL_*` variables ask for them.

`otel_signals()` sets this process's tracer and meter providers from the environment and yields the `Signals`
that speak to them; leaving it sends what is still buffered. The SDK and its exporters (the `planner-mcp[otel]`
extra) are imported by `otel_signals` only: importing this package loads the OpenTelemetry API alone, which the
MCP SDK imports anyway.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from server.telemetry.otel.listener import OtelSignals
from server.telemetry.signals import TelemetryUnavailable

__all__ = ["OtelSignals", "otel_signals"]

_INSTALL_HINT = "pip install 'planner-mcp[otel]'"


@contextmanager
def otel_signals(*, version: str = "", environ: Mapping[str, str] | None = None) -> Iterator[OtelSignals]:
    """OpenTelemetry set up from `environ` (the process's) for the life of this block, as the server `version`;
    on leaving it, the last spans and a last collection of every metric are exported (the exporter's own timeout,
    `OTEL_EXPORTER_OTLP_TIMEOUT`, bounds the wait). Raises `TelemetryUnavailable`, having set up nothing, when
    the packages are missing or the variables name an exporter or protocol this server cannot use.

    The SDK's exporters read their endpoint, headers and timeouts from the process environment themselves."""
    try:
        from server.telemetry.otel.setup import install
    except ImportError as missing:
        raise TelemetryUnavailable(
            f"its packages are not installed ({missing.name} is missing): {_INSTALL_HINT}"
        ) from missing
    installed = install(os.environ if environ is None else environ, version)
    try:
        yield OtelSignals(version)
    finally:
        if installed is not None:
            installed.shutdown()
