"""OpenTelemetry set up from the standard variables: what they may choose, what they may not, and where the
`console` exporter writes. Each set-up that installs providers runs in a fresh interpreter: a process sets its
global providers once, and this one set its own (conftest)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from server.telemetry import TelemetryUnavailable
from server.telemetry.otel import otel_signals
from tests.processes import host_env

_BY_CONSOLE = textwrap.dedent(
    """
    from server.telemetry.otel import otel_signals

    with otel_signals(version="1.2.3") as signals, signals.store_read("file", "docs"):
        pass
    """
)


def _console(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none", **env}
    return subprocess.run(
        [sys.executable, "-c", _BY_CONSOLE], capture_output=True, text=True, timeout=60,
        env=host_env(tmp_path / "ledger.db", PYTHONPATH=str(Path(__file__).parents[3]), **variables),
    )  # fmt: skip


@pytest.mark.subprocess
def test_the_console_exporter_writes_spans_to_stderr_and_nothing_to_stdout_named_planner_mcp(tmp_path: Path) -> None:
    done = _console(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    span = json.loads(done.stderr)
    assert span["name"] == "store read docs"
    assert span["resource"]["attributes"]["service.name"] == "planner-mcp"
    assert span["resource"]["attributes"]["service.version"] == "1.2.3"


@pytest.mark.subprocess
def test_otel_service_name_names_the_service_instead(tmp_path: Path) -> None:
    done = _console(tmp_path, OTEL_SERVICE_NAME="planner-fleet-a")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr)["resource"]["attributes"]["service.name"] == "planner-fleet-a"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER=zipkin"),
        ({"OTEL_METRICS_EXPORTER": "otlp,prometheus"}, "OTEL_METRICS_EXPORTER=prometheus"),
        (  # the signal's own variable wins over the general one
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL is 'http/json'",
        ),
        ({"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"}, "pip install opentelemetry-exporter-otlp-proto-grpc"),
    ],
)
def test_variables_that_name_an_exporter_or_protocol_it_cannot_use_are_a_clear_error(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(TelemetryUnavailable, match=named.replace("[", r"\[")), otel_signals(environ=environ):
        pass


def test_asked_for_without_the_sdk_installed_the_error_says_to_install_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "server.telemetry.otel.setup", raising=False)
    for name in [name for name in sys.modules if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))]:
        monkeypatch.setitem(sys.modules, name, None)  # what an import of a package that is not installed meets
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)
    asked = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    with pytest.raises(TelemetryUnavailable, match=r"pip install 'planner-mcp\[otel\]'"), otel_signals(environ=asked):
        pass
