"""What telemetry costs: the same server with it off, with Prometheus on, with OpenTelemetry exporting to a
loopback OTLP sink, and with both, read round trips interleaved and cold starts in turn.

Off is how every other section runs the server (and what its targets judge); here the figures with it on are
reported beside it, as ratios to off in the same run. A server whose telemetry did not really run (no scrape
answered, nothing exported to the sink) fails the section, rather than timing a server with it off.
"""

import importlib.util
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from bench.processes import Launch, free_port
from bench.sessions import cold_start, interleave, open_session
from bench.stats import ratio, rotations, summarize
from bench.workspace import READS, Workspace

__all__ = ["otlp_sink", "telemetry_cost"]

_SCRAPE_TIMEOUT_S = 10.0


class _Sink(ThreadingHTTPServer):
    daemon_threads = True
    received = 0


class _Accept(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that keeps nothing: every export is read whole and answered 200 (an empty protobuf
    response is a valid one)."""

    server: _Sink

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def otlp_sink() -> Iterator[_Sink]:
    """A loopback OTLP/HTTP endpoint (`http://127.0.0.1:PORT`) for the servers to export to."""
    sink = _Sink(("127.0.0.1", 0), _Accept)
    thread = threading.Thread(target=sink.serve_forever, name="otlp-sink", daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()


def _launches(ws: Workspace, sink: _Sink, otel: bool) -> tuple[dict[str, Launch], dict[str, int]]:
    """The servers to compare, by name, and the metrics port of each that serves one."""
    endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
    exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
    ports = {"prometheus": free_port(), "both": free_port()}
    launches = {
        "off": ws.planner("off", "telemetry-off"),
        "prometheus": ws.planner("prometheus", "telemetry-prom", PLANNER_MCP_METRICS_PORT=str(ports["prometheus"])),
    }
    if otel:
        launches["otel"] = ws.planner("otel", "telemetry-otel", **exporting)
        launches["both"] = ws.planner(
            "both", "telemetry-both", PLANNER_MCP_METRICS_PORT=str(ports["both"]), **exporting
        )
    return launches, {name: port for name, port in ports.items() if name in launches}


def _scraped_calls(port: int) -> float:
    """The calls a server's own scrape counts: more than none, or its metrics were not on."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=_SCRAPE_TIMEOUT_S) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("planner_mcp_calls_total{")
    )


async def telemetry_cost(ws: Workspace, calls: int, batch: int, cold_runs: int, errlog: TextIO) -> dict[str, Any]:
    otel = importlib.util.find_spec("opentelemetry.sdk") is not None
    result: dict[str, Any] = {"otel": "measured" if otel else "skipped: pip install -e '.[otel]'"}
    with otlp_sink() as sink:
        launches, ports = _launches(ws, sink, otel)
        reads: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            sessions = [await open_session(stack, launch, errlog) for launch in launches.values()]
            for tool, call in READS.items():
                samples = await interleave(sessions, [call], rounds=max(1, calls // batch), batch=batch)
                figures: dict[str, Any] = {name: summarize(t).as_dict() for name, t in samples.times_ms.items()}
                for name in launches:
                    if name != "off":
                        figures[f"ratio_p50_{name}_to_off"] = ratio(figures[name]["p50"], figures["off"]["p50"])
                reads[tool] = figures
            for name, port in ports.items():
                if _scraped_calls(port) <= 0:
                    raise RuntimeError(f"the {name} server's scrape counted no call: its metrics were not on")
        if otel and sink.received == 0:
            raise RuntimeError("nothing reached the OTLP sink: OpenTelemetry was not on")
        result["read_tools"] = reads
        result["cold_start"] = await _cold(launches, cold_runs, errlog)
        result["otlp_exports"] = sink.received
    return result


async def _cold(launches: dict[str, Launch], runs: int, errlog: TextIO) -> dict[str, Any]:
    """Spawn to first tools/list, the servers taking turns (the metrics ports are free again between starts)."""
    times: dict[str, list[float]] = {name: [] for name in launches}
    for order in rotations(list(launches), runs * len(launches)):
        name = order[0]
        times[name].append(await cold_start(launches[name], errlog) * 1000)
    figures: dict[str, Any] = {name: summarize(t).as_dict() for name, t in times.items()}
    for name in launches:
        if name != "off":
            figures[f"ratio_p50_{name}_to_off"] = ratio(figures[name]["p50"], figures["off"]["p50"])
    return figures
