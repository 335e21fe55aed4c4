"""The signals as OpenTelemetry spans and metrics, named by the semantic conventions for MCP and GenAI.

The SDK's lowlevel server already makes the SERVER span of every request (`mcp.method.name`, the tool's name, the
parent from the request's `_meta`); this adds what only the gate knows to that span, and the children of one call:
the store read, the LLM request (a GenAI client span with its token usage) and the ledger's writes. It speaks to
the OpenTelemetry API only, through the global providers: `setup` installs the SDK's, so this module never imports
the SDK, and with no provider installed every span and instrument here is the API's no-op.

Every attribute is a name the server chose or a figure: never an argument's value, a document, a reply or a key.
"""

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from server.telemetry.signals import CallEnded, LLMExchange, LLMRequest, Signals

__all__ = ["OtelSignals"]

_SCOPE = "planner-mcp"

_DURATION_BUCKETS_S = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
"""The semantic conventions' advice for `mcp.server.operation.duration` and `gen_ai.client.operation.duration`."""

_LEDGER_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
"""A ledger append is a local transaction: milliseconds, not the seconds an LLM takes."""

_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
"""The semantic conventions' advice for `gen_ai.client.token.usage`."""

_PROVIDER = "openai"
"""The LLM client speaks the OpenAI API (`gen_ai.provider.name`), whichever compatible endpoint answers."""

_UNKNOWN = "unknown"
"""What a tool's name becomes on a span when the caller named none of ours: the caller's text stays out."""


class OtelSignals(Signals):
    """What the call path tells monitoring, as spans under the request's SERVER span and as metrics."""

    def __init__(self, version: str = "") -> None:
        """`version`: the server's, as the instrumentation scope's."""
        self._tracer = trace.get_tracer(_SCOPE, version)
        meter = metrics.get_meter(_SCOPE, version)
        self._operations = meter.create_histogram(
            "mcp.server.operation.duration", "s", "How long the server took over an MCP request that reached the gate",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS_S,
        )  # fmt: skip
        self._llm_durations = meter.create_histogram(
            "gen_ai.client.operation.duration", "s", "How long one request to the LLM took, its retries included",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS_S,
        )  # fmt: skip
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", "{token}", "Tokens one LLM request used, by gen_ai.token.type",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )  # fmt: skip
        self._ledger_durations = meter.create_histogram(
            "planner_mcp.ledger.append.duration", "s", "How long one ledger write transaction took, by table",
            explicit_bucket_boundaries_advisory=_LEDGER_BUCKETS_S,
        )  # fmt: skip

    def call_ended(self, call: CallEnded) -> None:
        """Called in the thread that recorded the outcome, whose context holds the request's SERVER span."""
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes(_call_attributes(call))
            if call.tool is None:  # the SDK named the span and `gen_ai.*.name` after the caller's text
                span.update_name(call.method)
                if call.method in _NAME_ATTRIBUTE:
                    span.set_attribute(_NAME_ATTRIBUTE[call.method], _UNKNOWN)
        self._operations.record(call.duration_s, _operation_attributes(call))

    def ledger_written(self, table: str, started_ns: int, ended_ns: int, failure: str | None) -> None:
        """A span made after the fact, with the transaction's own bounds, under the call's current span."""
        attributes: dict[str, AttributeValue] = {"planner_mcp.ledger.table": table}
        if failure is not None:
            attributes["error.type"] = failure
        span = self._tracer.start_span(f"ledger append {table}", attributes=attributes, start_time=started_ns)
        if failure is not None:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=ended_ns)
        self._ledger_durations.record(max(ended_ns - started_ns, 0) / 1e9, attributes)

    def store_read(self, store: str, what: str) -> AbstractContextManager[None]:
        return self._store_read(store, what)

    @contextmanager
    def _store_read(self, store: str, what: str) -> Iterator[None]:
        attributes: dict[str, AttributeValue] = {"planner_mcp.store": store, "planner_mcp.store.read": what}
        with self._child(f"store read {what}", SpanKind.INTERNAL, attributes) as span:
            try:
                yield
            except BaseException as error:
                _failed(span, type(error).__qualname__)
                raise

    def llm_request(self, request: LLMRequest) -> AbstractContextManager[LLMExchange]:
        return self._llm_request(request)

    @contextmanager
    def _llm_request(self, request: LLMRequest) -> Iterator[LLMExchange]:
        """A GenAI CLIENT span `chat {model}`, and the request's duration and token usage as measurements."""
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": _PROVIDER,
            "gen_ai.system": _PROVIDER,  # the name before semantic conventions 1.37, which many backends still read
            "gen_ai.request.model": request.model,
            "server.address": request.host,
        }
        exchange = _Exchange()
        started = time.perf_counter()
        output_type = "json" if request.structured else "text"
        with self._child(
            f"chat {request.model}", SpanKind.CLIENT, {**attributes, "gen_ai.output.type": output_type}
        ) as span:
            try:
                yield exchange
            except BaseException as error:
                exchange.failed(exchange.failure or type(error).__qualname__)
                raise
            finally:
                exchange.tell(span)
                self._llm_measured(
                    time.perf_counter() - started, {**attributes, **exchange.metric_attributes()}, exchange
                )

    def _llm_measured(self, duration_s: float, attributes: dict[str, AttributeValue], exchange: "_Exchange") -> None:
        self._llm_durations.record(duration_s, attributes)
        for token_type, count in (("input", exchange.input_tokens), ("output", exchange.output_tokens)):
            if count is not None:
                self._tokens.record(count, {**attributes, "gen_ai.token.type": token_type})

    def _child(
        self, name: str, kind: SpanKind, attributes: dict[str, AttributeValue]
    ) -> AbstractContextManager[trace.Span]:
        """A child of the current span. An exception passing through is named by its type only (`_failed`): its
        message may quote what the caller sent or what the store holds, so it is never recorded."""
        return self._tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
        )


def _failed(span: trace.Span, error_type: str) -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR))


_NAME_ATTRIBUTE = {"tools/call": "gen_ai.tool.name", "prompts/get": "gen_ai.prompt.name"}


def _call_attributes(call: CallEnded) -> dict[str, AttributeValue]:
    """What the gate adds to the request's SERVER span."""
    attributes: dict[str, AttributeValue] = {
        "planner_mcp.agent.id": call.agent_id,
        "planner_mcp.decision": call.decision,
        "planner_mcp.refused": call.refused,
    }
    if call.error_kind is not None:
        attributes["planner_mcp.error.kind"] = call.error_kind
    return attributes


def _operation_attributes(call: CallEnded) -> dict[str, AttributeValue]:
    """`mcp.server.operation.duration`'s attributes: the conventions' own, and the gate's bounded names."""
    attributes: dict[str, AttributeValue] = {"mcp.method.name": call.method, **_call_attributes(call)}
    name = call.tool if call.tool is not None else _UNKNOWN
    if call.method == "tools/call":
        attributes["gen_ai.operation.name"] = "execute_tool"
    if call.method in _NAME_ATTRIBUTE:
        attributes[_NAME_ATTRIBUTE[call.method]] = name
    if call.error_kind is not None:
        attributes["error.type"] = call.error_kind
    return attributes


class _Exchange(LLMExchange):
    """What the LLM client says as its request ends, kept until the span and the measurements are made."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.finish: str | None = None
        self.failure: str | None = None

    def replied(self, *, model: str, input_tokens: int | None, output_tokens: int | None, finish: str | None) -> None:
        self.model, self.input_tokens, self.output_tokens, self.finish = model, input_tokens, output_tokens, finish

    def failed(self, kind: str) -> None:
        self.failure = kind

    def tell(self, span: trace.Span) -> None:
        """Put what was learned on the request's span: the reply's figures, or the failure's kind."""
        span.set_attributes(self._usage())
        if self.failure is not None:
            _failed(span, self.failure)

    def _usage(self) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {}
        if self.model is not None:
            attributes["gen_ai.response.model"] = self.model
        if self.input_tokens is not None:
            attributes["gen_ai.usage.input_tokens"] = self.input_tokens
        if self.output_tokens is not None:
            attributes["gen_ai.usage.output_tokens"] = self.output_tokens
        if self.finish is not None:
            attributes["gen_ai.response.finish_reasons"] = (self.finish,)
        return attributes

    def metric_attributes(self) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {}
        if self.model is not None:
            attributes["gen_ai.response.model"] = self.model
        if self.failure is not None:
            attributes["error.type"] = self.failure
        return attributes
