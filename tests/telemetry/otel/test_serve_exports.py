"""A real `planner-mcp serve` turns OpenTelemetry on from the standard variables alone, exports over OTLP/HTTP to
a collector (a loopback receiver here), takes the trace context a host sends in `_meta`, and sends what it still
buffered as it stops, at the end of stdin or at SIGTERM. With the variables unset, it loads nothing of the SDK."""

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.http_server import free_port
from tests.processes import HANDSHAKE, server_process
from tests.telemetry.otel.otlp_receiver import OTLPReceiver, attributes

pytestmark = pytest.mark.subprocess

_TRACE_ID = "5b8efff798038103d269b633813fc60c"
_PARENT_ID = "eee19b7ec3c1b174"

_MESSAGES: list[dict[str, Any]] = [
    *HANDSHAKE,
    {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {
            "name": "read_docs",
            "arguments": {"name": "backup-restore"},
            "_meta": {"traceparent": f"00-{_TRACE_ID}-{_PARENT_ID}-01"},
        },
    },
]
"""A host's handshake, then one read whose request carries the host's trace context."""

_HOURLY = {"OTEL_METRIC_EXPORT_INTERVAL": "3600000"}
"""Metrics exported on the hour: what the receiver gets is what the server sent as it stopped."""


def _serve(ledger_path: Path, env: dict[str, str], stop: signal.Signals | None) -> tuple[list[Any], str]:
    """The messages to a stdio server, which, once it has answered the read, is stopped as a host stops it: its
    stdin closed, or `stop` sent. Its two replies (parsed), and what it wrote to stderr (into a file: the import
    log is more than a pipe holds while the test reads stdout)."""
    errors = ledger_path.parent / "stderr.txt"
    errors.parent.mkdir(parents=True, exist_ok=True)
    with errors.open("w") as stderr, server_process(ledger_path, "serve", env=env, text=True, stderr=stderr) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in _MESSAGES))
        proc.stdin.flush()
        replies = [json.loads(proc.stdout.readline()) for _ in range(2)]  # the watchdog ends a wait that hangs
        if stop is not None:
            proc.send_signal(stop)
        out, _ = proc.communicate(timeout=30)  # closes stdin
        assert proc.returncode == 0, errors.read_text()
    assert out == ""
    return replies, errors.read_text()


@pytest.mark.parametrize("stop", [None, signal.SIGTERM], ids=["stdin closed", "SIGTERM"])
def test_served_with_an_otlp_endpoint_the_request_span_and_its_children_reach_the_collector_as_it_stops(
    ledger_path: Path, stop: signal.Signals | None
) -> None:
    with OTLPReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "PYTHONPROFILEIMPORTTIME": "1", **_HOURLY}
        replies, err = _serve(ledger_path, env, stop)
        assert replies[1]["result"]["structuredContent"]["decision"] == "EXECUTE"
        spans = {span.name: (resource, span) for resource, span in receiver.spans()}
        points = list(receiver.metrics())
    assert "opentelemetry.sdk" in _imported(err)  # the converse of the test below: that test can fail
    resource, request = spans["tools/call read_docs"]
    assert resource["service.name"] == "planner-mcp"
    assert (request.trace_id.hex(), request.parent_span_id.hex()) == (_TRACE_ID, _PARENT_ID)
    said = attributes(request.attributes)
    assert said["mcp.method.name"] == "tools/call" and said["gen_ai.tool.name"] == "read_docs"
    assert (said["planner_mcp.decision"], said["planner_mcp.refused"]) == ("EXECUTE", False)
    for child in ("store read docs", "ledger append call_intents", "ledger append agent_actions"):
        assert spans[child][1].parent_span_id == request.span_id, child
        assert spans[child][1].trace_id.hex() == _TRACE_ID
    reads = [point for name, point in points if name == "mcp.server.operation.duration"]
    assert [attributes(point.attributes)["gen_ai.tool.name"] for point in reads] == ["read_docs"]
    assert reads[0].count == 1


def test_a_collector_that_does_not_answer_holds_the_stop_a_bounded_while_and_what_was_left_is_dropped_and_said(
    ledger_path: Path,
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens there: every export is refused, and retried
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": nobody, "OTEL_EXPORTER_OTLP_TIMEOUT": "600", **_HOURLY}
    replies, err = _serve(ledger_path, env, None)  # its bounded wait fails if the exporters' retries hold the stop
    assert replies[1]["result"]["structuredContent"]["decision"] == "EXECUTE"
    assert "the last traces and metrics were not all sent in 5 s" in err


def test_served_without_otel_variables_no_module_of_the_opentelemetry_sdk_is_loaded(ledger_path: Path) -> None:
    replies, err = _serve(ledger_path, {"PYTHONPROFILEIMPORTTIME": "1"}, None)
    assert replies[1]["result"]["structuredContent"]["decision"] == "EXECUTE"
    imported = _imported(err)
    assert "mcp.server.lowlevel.server" in imported  # the import log is there, and a server was loaded
    assert [name for name in imported if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))] == []


def test_asked_for_without_the_packages_the_server_says_what_to_install_and_serves(
    ledger_path: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "without-otel"
    missing.mkdir()
    # Imports of the SDK and its exporters fail in this process as in an environment without the extra.
    (missing / "sitecustomize.py").write_text(
        "import sys\nfor name in ('opentelemetry.sdk', 'opentelemetry.exporter'):\n    sys.modules[name] = None\n"
    )
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "PYTHONPATH": str(missing)}
    replies, err = _serve(ledger_path, env, None)
    assert replies[1]["result"]["structuredContent"]["decision"] == "EXECUTE"
    assert "pip install 'planner-mcp[otel]'" in err


def _imported(stderr: str) -> list[str]:
    """The modules `python -X importtime` (PYTHONPROFILEIMPORTTIME) logged to stderr, over the process's life."""
    return [line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")]
