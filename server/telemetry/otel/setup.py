"""The OpenTelemetry SDK's providers, set up once per process from the standard `OTEL_*` variables.

Imported only when OpenTelemetry is on: it imports the SDK and its exporters, which a server with telemetry off
never loads. What the SDK reads itself it keeps reading (`OTEL_EXPORTER_OTLP_*` endpoints, headers, timeouts and
certificates, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL`,
`OTEL_TRACES_SAMPLER`); this module reads what only the SDK's auto-configuration would: which exporters
(`OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER`: `otlp`, the default, `console` or `none`) and over which
protocol (`OTEL_EXPORTER_OTLP[_TRACES|_METRICS]_PROTOCOL`: `http/protobuf`, the default, or `grpc`).
`console` writes to stderr: stdout carries the protocol.
"""

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from server.telemetry.signals import TelemetryUnavailable

__all__ = ["STOP_WAIT_S", "Installed", "check", "install"]

logger = logging.getLogger("server.telemetry")

_DEFAULT_SERVICE = "planner-mcp"

STOP_WAIT_S = 5.0
"""How long a stopping server waits for the collector to take what it still buffered."""

_OTLP = {
    ("traces", "http/protobuf"): ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
    ("metrics", "http/protobuf"): ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter"),
    ("traces", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
    ("metrics", "grpc"): ("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
}
"""The OTLP exporter of each signal and protocol: the module (imported only when chosen) and its class."""

_PACKAGES = {
    "http/protobuf": "opentelemetry-exporter-otlp-proto-http",
    "grpc": "opentelemetry-exporter-otlp-proto-grpc",
}


@dataclass(frozen=True, slots=True)
class Installed:
    """The providers this process set up: flushed and shut down once, as it stops (`shutdown`)."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        """Export what is still buffered (the last spans, a last collection of every metric), then stop; both at
        once, and for `STOP_WAIT_S` at most: a collector that does not answer would otherwise hold the process's
        exit for the exporter's retries of each signal in turn. What is not sent by then is dropped, and said."""
        stops = [
            threading.Thread(target=provider.shutdown, name=f"otel-stop-{signal}", daemon=True)
            for signal, provider in (("traces", self.tracer_provider), ("metrics", self.meter_provider))
        ]
        for stop in stops:
            stop.start()
        deadline = time.monotonic() + STOP_WAIT_S
        for stop in stops:
            stop.join(max(deadline - time.monotonic(), 0))
        if late := [stop.name.removeprefix("otel-stop-") for stop in stops if stop.is_alive()]:
            logger.warning(
                "OpenTelemetry: the last %s were not all sent in %g s (the collector did not take them): the rest"
                " are dropped", " and ".join(late), STOP_WAIT_S,
            )  # fmt: skip


def install(environ: Mapping[str, str], version: str) -> Installed | None:
    """Set the global tracer and meter providers from `environ`; None when this process already had them (run
    under `opentelemetry-instrument`, say: those are used as they are, and stopped by whoever set them up).
    `TelemetryUnavailable` when the variables name what cannot be used, whether or not the providers were set."""
    span_exporters = [_span_exporter(name, environ) for name in _chosen(environ, "traces")]
    metric_exporters = [_metric_exporter(name, environ) for name in _chosen(environ, "metrics")]
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None
    resource = _resource(version)
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for span_exporter in span_exporters:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    readers = [PeriodicExportingMetricReader(exporter) for exporter in metric_exporters]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Installed(tracer_provider, meter_provider)


def check(environ: Mapping[str, str]) -> None:
    """Raise the `TelemetryUnavailable` that `install` would, setting nothing up and making no exporter (for
    `doctor`, which must not start what it checks)."""
    for signal in ("traces", "metrics"):
        for name in _chosen(environ, signal):
            if name == "otlp":
                _otlp(signal, environ)


def _resource(version: str) -> Resource:
    """The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), named `planner-mcp` unless those
    name it."""
    resource = Resource.create({SERVICE_VERSION: version} if version else {})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: _DEFAULT_SERVICE}))
    return resource


def _chosen(environ: Mapping[str, str], signal: str) -> list[str]:
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    names = [name.strip().lower() for name in environ.get(variable, "otlp").split(",") if name.strip()]
    unknown = sorted(set(names) - {"otlp", "console", "none"})
    if unknown:
        raise TelemetryUnavailable(
            f"{variable}={','.join(unknown)} is not an exporter planner-mcp knows: use otlp, console or none"
        )
    return [name for name in names if name != "none"]


def _span_exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    exporter: SpanExporter = _otlp("traces", environ)()
    return exporter


def _metric_exporter(name: str, environ: Mapping[str, str]) -> MetricExporter:
    if name == "console":
        return ConsoleMetricExporter(out=sys.stderr)
    exporter: MetricExporter = _otlp("metrics", environ)()
    return exporter


def _otlp(signal: str, environ: Mapping[str, str]) -> Callable[[], Any]:
    """The OTLP exporter class for `signal` over the protocol the environment names; the exporter reads its own
    endpoint, headers and timeout from the environment when made."""
    variables = (f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")  # the first wins
    named = next((variable for variable in variables if environ.get(variable)), None)
    protocol = environ[named] if named is not None else "http/protobuf"
    if (signal, protocol) not in _OTLP:
        raise TelemetryUnavailable(f"{named} is {protocol!r}: planner-mcp exports OTLP as http/protobuf or grpc")
    module, name = _OTLP[signal, protocol]
    try:
        exporter: Callable[[], Any] = getattr(import_module(module), name)
    except ImportError as missing:
        raise TelemetryUnavailable(
            f"OTLP over {protocol} needs the package {_PACKAGES[protocol]}, which is not installed"
            f" (pip install {_PACKAGES[protocol]})"
        ) from missing
    return exporter
