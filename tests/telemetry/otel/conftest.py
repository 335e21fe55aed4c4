"""The process's OpenTelemetry providers for these tests: the SDK's, exporting into memory.

A process sets its global providers once, so one pair serves the whole run; each test sees what was exported while
it ran (`exported`), and nothing is kept between tests or after them.
"""

from collections.abc import Iterator

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.telemetry.otel import OtelSignals
from tests.telemetry.otel.exported import Exported

_DELTA = AggregationTemporality.DELTA


class _WhileTesting(SimpleSpanProcessor):
    """Exports a span only while an OpenTelemetry test runs: the other tests' spans are not kept."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        super().__init__(exporter)
        self.on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            super().on_end(span)


@pytest.fixture(scope="session")
def _providers() -> Iterator[tuple[_WhileTesting, InMemorySpanExporter, InMemoryMetricReader]]:
    spans = InMemorySpanExporter()
    processor = _WhileTesting(spans)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(processor)
    # Delta: each collection holds what was measured since the last, so a test reads only its own measurements.
    reader = InMemoryMetricReader(preferred_temporality=dict.fromkeys((Counter, Histogram, UpDownCounter), _DELTA))
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    yield processor, spans, reader
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def exported(_providers: tuple[_WhileTesting, InMemorySpanExporter, InMemoryMetricReader]) -> Iterator[Exported]:
    """What the process exports while this test runs."""
    processor, spans, reader = _providers
    spans.clear()
    reader.get_metrics_data()  # what earlier tests measured is collected, and so forgotten
    processor.on = True
    try:
        yield Exported(spans, reader)
    finally:
        processor.on = False
        spans.clear()


@pytest.fixture
def signals(exported: Exported) -> OtelSignals:
    """The listener, speaking to this run's providers."""
    return OtelSignals()
