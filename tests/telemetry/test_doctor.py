"""`planner-mcp doctor` on monitoring: off by default, a port it could not bind, a listener beyond loopback."""

import socket
from collections.abc import Callable

import pytest

from server import Settings
from server.config.telemetry import TelemetryConfig
from server.doctor.run import Check, run_checks


def _telemetry_checks(settings: Settings) -> dict[str, Check]:
    return {c.name: c for c in run_checks(settings) if c.name.startswith("telemetry")}


def test_with_no_monitoring_asked_for_the_doctor_says_it_is_off(make_settings: Callable[..., Settings]) -> None:
    checks = _telemetry_checks(make_settings())
    assert {name: c.status for name, c in checks.items()} == {"telemetry": "ok"}
    assert checks["telemetry"].detail.startswith("off")


def test_a_metrics_port_another_process_holds_fails_with_the_setting_to_change(
    make_settings: Callable[..., Settings],
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        checks = _telemetry_checks(make_settings(telemetry=TelemetryConfig(metrics=("127.0.0.1", port))))
    check = checks["telemetry.metrics"]
    assert check.status == "fail" and f"127.0.0.1:{port}" in check.detail
    assert "PLANNER_MCP_METRICS_PORT" in check.fix


def test_a_free_loopback_port_passes_and_one_beyond_loopback_is_a_warning(
    make_settings: Callable[..., Settings],
) -> None:
    ok = _telemetry_checks(make_settings(telemetry=TelemetryConfig(metrics=("127.0.0.1", 0))))
    assert ok["telemetry.metrics"].status == "ok"
    wide = _telemetry_checks(make_settings(telemetry=TelemetryConfig(metrics=("0.0.0.0", 0))))
    assert wide["telemetry.metrics"].status == "warn" and "beyond this machine" in wide["telemetry.metrics"].detail


def test_opentelemetry_asked_for_is_checked_by_the_rules_serve_starts_it_by(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OTEL_* variables are OpenTelemetry's own, read from the process environment by serve and doctor alike."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    settings = make_settings(telemetry=TelemetryConfig(otel="OTEL_EXPORTER_OTLP_ENDPOINT"))
    assert _telemetry_checks(settings)["telemetry.otel"].status == "ok"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    check = _telemetry_checks(settings)["telemetry.otel"]
    assert check.status == "fail" and "OTEL_TRACES_EXPORTER=zipkin" in check.detail
