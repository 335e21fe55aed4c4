"""OpenTelemetry traces and metrics, off unless the standard `OTEL_*` variables ask for them.

`otel_signals()` sets this process's tracer and meter providers from the environment and returns the `Signals`
that speak to them; `shutdown()` on what it returned exports what is still buffered, as the server stops. The SDK
and its exporters are imported by `otel_signals` only (they are the `planner-mcp[otel]` extra): importing this
package loads the OpenTelemetry API alone, which the MCP SDK imports anyway.
"""

import atexit
import os
from collections.abc import Mapping

from server.telemetry.otel.errors import OtelUnavailable
from server.telemetry.otel.listener import OtelSignals

__all__ = ["OtelSignals", "OtelUnavailable", "otel_signals"]

_INSTALL_HINT = "pip install 'planner-mcp[otel]'"


def otel_signals(environ: Mapping[str, str] | None = None) -> OtelSignals:
    """Set up OpenTelemetry from `environ` (the process's) and return its listener. Raises `OtelUnavailable` when
    the packages are missing or the variables name what cannot be used; nothing is set up then.

    The SDK's exporters read their endpoint, headers and timeouts from the process environment themselves."""
    try:
        from server.telemetry.otel.setup import install
    except ImportError as missing:
        raise OtelUnavailable(
            f"OpenTelemetry is configured (OTEL_*) but its packages are not installed ({missing.name}): {_INSTALL_HINT}"
        ) from missing
    installed = install(os.environ if environ is None else environ)
    signals = OtelSignals(stop=installed.shutdown if installed is not None else None)
    atexit.register(signals.shutdown)  # a process that ends some other way still sends what it buffered
    return signals
