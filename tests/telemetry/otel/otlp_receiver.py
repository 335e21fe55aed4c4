"""An OTLP/HTTP receiver on loopback, as a collector would be: it takes what an exporter sends to `/v1/traces` and
`/v1/metrics`, decodes it with the protocol's own messages (`opentelemetry-proto`), and keeps it."""

import gzip
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.peers.loopback import LoopbackHandler, LoopbackPeer

__all__ = ["OTLPReceiver", "Received", "attributes"]

_SIGNALS: dict[str, tuple[Any, Any]] = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}


@dataclass(frozen=True)
class Received:
    path: str
    message: Any
    """The decoded `ExportTraceServiceRequest` or `ExportMetricsServiceRequest`."""


class OTLPReceiver(LoopbackPeer[Received]):
    """Answers every export with success; `endpoint` is what `OTEL_EXPORTER_OTLP_ENDPOINT` names."""

    @property
    def endpoint(self) -> str:
        return self.addr

    def spans(self) -> list[tuple[Mapping[str, Any], Any]]:
        """Every span received: its resource's attributes, and the span (`opentelemetry.proto.trace.v1.Span`)."""
        return [
            (attributes(resource_spans.resource.attributes), span)
            for received in self.requests
            if received.path == "/v1/traces"
            for resource_spans in received.message.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def metrics(self) -> Iterator[tuple[str, Any]]:
        """Every metric received: its name, and each of its data points (of whatever kind)."""
        for received in self.requests:
            if received.path != "/v1/metrics":
                continue
            for resource_metrics in received.message.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        data = getattr(metric, metric.WhichOneof("data"))
                        yield from ((metric.name, point) for point in data.data_points)


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP's key-value list as a dict of plain values."""
    return {pair.key: _plain(pair.value) for pair in cast(list[KeyValue], pairs)}


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_plain(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


class _Handler(LoopbackHandler):
    def do_POST(self) -> None:
        receiver = cast(OTLPReceiver, self.peer)
        if self.path not in _SIGNALS:
            self.send_error(404)
            return
        body = self.read_body()
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        request_type, response_type = _SIGNALS[self.path]
        message = request_type()
        message.ParseFromString(body)
        receiver._record(Received(self.path, message))
        self.respond(200, [("content-type", "application/x-protobuf")], response_type().SerializeToString())


OTLPReceiver.handler = _Handler
