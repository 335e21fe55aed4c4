"""What monitoring the server feeds: a Prometheus listener (`PLANNER_MCP_METRICS_PORT`), and OpenTelemetry when the
standard `OTEL_*` variables ask for it (the OpenTelemetry SDK reads those itself; here they only decide on or off)."""

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

__all__ = ["LOOPBACK", "TelemetryConfig", "listen_address", "otel_requested"]

LOOPBACK = "127.0.0.1"

_EXPORTER_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
_EXPORTERS = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER")


class TelemetryConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: tuple[str, int] | None = None
    """Where the Prometheus listener binds (host, port), or None for no listener. Port 0 picks a free one."""
    otel: str | None = None
    """The `OTEL_*` variable that turned OpenTelemetry on, or None when it is off."""


def listen_address(raw: str, name: str, where: str) -> tuple[str, int]:
    """`PORT` (on the loopback address) or `HOST:PORT`; an IPv6 host in brackets (`[::1]:9464`)."""
    host, colon, port_text = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if colon else LOOPBACK
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535 or not host or len(port_text) > 5:
        raise ValueError(
            f"{name}{where} must be a port (0-65535), or HOST:PORT, e.g. 9464 or 127.0.0.1:9464; it is neither"
        )
    return host, port


def otel_requested(env: Mapping[str, str]) -> str | None:
    """The variable that asks for OpenTelemetry, or None: off unless an exporter or its endpoint is named, and off
    whenever `OTEL_SDK_DISABLED=true` (the SDK's own switch)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    for name in _EXPORTER_ENDPOINTS:
        if env.get(name, "").strip():
            return name
    for name in _EXPORTERS:
        value = env.get(name, "").strip().lower()
        if value and value != "none":
            return name
    return None
