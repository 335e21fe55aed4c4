"""`doctor`'s check of monitoring: whether the Prometheus listener could bind its address, and whether the
OpenTelemetry that the OTEL_* variables ask for could start (its packages installed)."""

import ipaddress
import os
from collections.abc import Iterator

from server.config.settings import Settings
from server.doctor.check import Check
from server.telemetry import TelemetryUnavailable
from server.telemetry.prometheus.listener import bound

__all__ = ["telemetry_checks"]


def telemetry_checks(settings: Settings) -> Iterator[Check]:
    telemetry = settings.telemetry
    if telemetry.metrics is None and telemetry.otel is None:
        yield Check("telemetry", "ok", "off: no PLANNER_MCP_METRICS_PORT and no OTEL_* exporter asked for")
        return
    if telemetry.metrics is not None:
        yield _metrics(*telemetry.metrics)
    if telemetry.otel is not None:
        yield _otel(telemetry.otel)


def _metrics(host: str, port: int) -> Check:
    where = f"http://{host}:{port}/metrics" if ":" not in host else f"http://[{host}]:{port}/metrics"
    try:
        bound(host, port).close()  # bound as the listener binds, so the doctor and the server agree
    except OSError as exc:
        return Check(
            "telemetry.metrics",
            "fail",
            f"Prometheus metrics could not listen at {where}: {exc.strerror or exc}",
            "Choose a free port (PLANNER_MCP_METRICS_PORT), or stop what holds it; the server would serve without "
            "metrics.",
        )
    if not _loopback(host):
        return Check(
            "telemetry.metrics",
            "warn",
            f"Prometheus metrics would be served at {where}, beyond this machine, to anyone who can reach it",
            "Keep the port on the loopback address (PLANNER_MCP_METRICS_PORT=PORT) unless a firewall guards it.",
        )
    return Check("telemetry.metrics", "ok", f"Prometheus metrics would be served at {where}")


def _otel(variable: str) -> Check:
    """What `serve` would find, by the rules it starts OpenTelemetry by (`setup.check`), nothing set up."""
    try:
        from server.telemetry.otel.setup import check
    except ImportError as missing:
        return Check(
            "telemetry.otel",
            "fail",
            f"{variable} asks for OpenTelemetry, but its packages are not installed ({missing.name} is missing); "
            "the server would serve without it",
            "pip install 'planner-mcp[otel]', or unset the OTEL_* variables.",
        )
    try:
        check(os.environ)
    except TelemetryUnavailable as exc:
        return Check(
            "telemetry.otel",
            "fail",
            f"OpenTelemetry would not start: {exc}",
            "Fix what it names, or unset the OTEL_* variables.",
        )
    return Check("telemetry.otel", "ok", f"OpenTelemetry on ({variable} is set); exported over OTLP")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
