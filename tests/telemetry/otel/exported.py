"""What a test's OpenTelemetry providers exported: spans by name, and metric points with their attributes."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = ["Exported", "Point"]


@dataclass(frozen=True)
class Point:
    scope: str
    metric: str
    unit: str
    attributes: Mapping[str, Any]
    data: Any
    """The SDK's point (for a histogram, `HistogramDataPoint`: `count`, `sum`, `bucket_counts`)."""


class Exported:
    def __init__(self, spans: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self._spans = spans
        self._reader = reader
        self._collected: list[Point] = []

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span that ended so far, in the order they ended."""
        return self._spans.get_finished_spans()

    def span(self, name: str) -> ReadableSpan:
        """The one span of that name."""
        found = [span for span in self.spans() if span.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name!r} among {[s.name for s in self.spans()]}"
        return found[0]

    def points(self) -> list[Point]:
        """Every metric point measured in this test so far, of every instrumentation scope (each collection holds
        what was measured since the one before: a histogram may have several points of the same attributes)."""
        self._collected += self._points()
        return list(self._collected)

    def _points(self) -> Iterator[Point]:
        data = self._reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data is not None else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes or {})
                        yield Point(scope_metrics.scope.name, metric.name, metric.unit or "", attributes, point)

    def histogram(self, metric: str) -> list[tuple[Mapping[str, Any], HistogramDataPoint]]:
        """The points of one histogram of ours: their attributes, and the point."""
        found = [(p.attributes, p.data) for p in self.points() if p.scope == "planner-mcp" and p.metric == metric]
        assert all(isinstance(point, HistogramDataPoint) for _, point in found)
        return found
