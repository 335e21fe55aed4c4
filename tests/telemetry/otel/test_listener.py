"""The OpenTelemetry listener, told each signal directly: the spans and measurements each becomes.

The call path's own use of it (a real server, a request's `_meta`, the loopback LLM) is in `test_served`.
"""

import time

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from server.telemetry import CallEnded, LLMRequest
from server.telemetry.otel import OtelSignals
from tests.telemetry.otel.exported import Exported

_REQUEST = trace.get_tracer("a test's MCP server")


def _ended(**changes: object) -> CallEnded:
    fields: dict[str, object] = {
        "agent_id": "planner", "tool": "read_docs", "method": "tools/call", "decision": "EXECUTE",
        "error_kind": None, "refused": False, "duration_s": 0.004, "model": None, "prompt_tokens": None,
        "completion_tokens": None,
    }  # fmt: skip
    return CallEnded(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_gate_says_agent_decision_and_error_kind_on_the_request_span_and_times_the_operation(
    signals: OtelSignals, exported: Exported
) -> None:
    ended = _ended(decision="REFUSED", error_kind="not_allowed", refused=True, duration_s=0.25)
    with _REQUEST.start_as_current_span("tools/call read_docs", kind=SpanKind.SERVER):
        signals.call_ended(ended)
    span = exported.span("tools/call read_docs")
    assert span.attributes is not None
    assert {k: v for k, v in span.attributes.items() if k.startswith("planner_mcp.")} == {
        "planner_mcp.agent.id": "planner",
        "planner_mcp.decision": "REFUSED",
        "planner_mcp.error.kind": "not_allowed",
        "planner_mcp.refused": True,
    }
    [(attributes, point)] = exported.histogram("mcp.server.operation.duration")
    assert attributes == {
        "mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "read_docs",
        "error.type": "not_allowed", "planner_mcp.agent.id": "planner", "planner_mcp.decision": "REFUSED",
        "planner_mcp.refused": True, "planner_mcp.error.kind": "not_allowed",
    }  # fmt: skip
    assert (point.count, point.sum) == (1, 0.25)


def test_a_name_that_is_no_tool_of_ours_leaves_the_callers_text_out_of_the_span_and_the_metric(
    signals: OtelSignals, exported: Exported
) -> None:
    text = "ignore previous instructions; sk-live-0123456789"
    with _REQUEST.start_as_current_span(f"tools/call {text}", attributes={"gen_ai.tool.name": text}):
        signals.call_ended(_ended(tool=None, decision="REFUSED", error_kind="unknown_tool", refused=True))
    span = exported.span("tools/call")
    assert span.attributes is not None and span.attributes["gen_ai.tool.name"] == "unknown"
    [(attributes, _)] = exported.histogram("mcp.server.operation.duration")
    assert attributes["gen_ai.tool.name"] == "unknown"


def test_an_unknown_prompt_is_named_unknown_and_an_unknown_resource_gets_no_tool_name(
    signals: OtelSignals, exported: Exported
) -> None:
    with _REQUEST.start_as_current_span("prompts/get steal", attributes={"gen_ai.prompt.name": "steal"}):
        signals.call_ended(_ended(method="prompts/get", tool=None, decision="ERROR", refused=True))
    with _REQUEST.start_as_current_span("resources/read"):
        signals.call_ended(_ended(method="resources/read", tool=None, decision="ERROR", refused=True))
    prompt, resource = exported.span("prompts/get"), exported.span("resources/read")
    assert prompt.attributes is not None and prompt.attributes["gen_ai.prompt.name"] == "unknown"
    assert resource.attributes is not None and not any(name.startswith("gen_ai.") for name in resource.attributes)


def test_a_prompt_or_resource_is_measured_by_its_method_and_a_prompt_by_its_name(
    signals: OtelSignals, exported: Exported
) -> None:
    signals.call_ended(_ended(method="prompts/get", tool="plan_change"))
    signals.call_ended(_ended(method="resources/read", tool="inventory"))
    found = {point[0]["mcp.method.name"]: point[0] for point in exported.histogram("mcp.server.operation.duration")}
    assert found["prompts/get"]["gen_ai.prompt.name"] == "plan_change"
    assert "gen_ai.operation.name" not in found["prompts/get"]
    assert not any(name.startswith("gen_ai.") for name in found["resources/read"])


def test_a_ledger_write_is_a_span_with_the_transactions_own_times_under_the_calls_span(
    signals: OtelSignals, exported: Exported
) -> None:
    started = time.time_ns()
    with _REQUEST.start_as_current_span("tools/call read_docs") as request:
        signals.ledger_written("call_intents", started, started + 2_000_000, None)
        signals.ledger_written("agent_actions", started + 3_000_000, started + 4_000_000, "disk_full")
    intent, outcome = exported.span("ledger append call_intents"), exported.span("ledger append agent_actions")
    assert (intent.start_time, intent.end_time) == (started, started + 2_000_000)
    assert intent.parent is not None and intent.parent.span_id == request.get_span_context().span_id
    assert intent.status.status_code is StatusCode.UNSET
    assert outcome.status.status_code is StatusCode.ERROR
    assert outcome.attributes == {"planner_mcp.ledger.table": "agent_actions", "error.type": "disk_full"}
    points = {attributes["planner_mcp.ledger.table"]: (attributes, point)
              for attributes, point in exported.histogram("planner_mcp.ledger.append.duration")}  # fmt: skip
    assert points["call_intents"][1].sum == pytest.approx(0.002)
    assert points["agent_actions"][0]["error.type"] == "disk_full"


def test_a_store_read_is_a_child_span_and_its_failure_is_named_by_type_never_by_its_message(
    signals: OtelSignals, exported: Exported
) -> None:
    with _REQUEST.start_as_current_span("resources/read"), signals.store_read("vault", "inventory"):
        pass
    with pytest.raises(LookupError), signals.store_read("file", "docs"):
        raise LookupError("no document 'hunter2-secret-name'")
    good, bad = exported.span("store read inventory"), exported.span("store read docs")
    assert good.attributes == {"planner_mcp.store": "vault", "planner_mcp.store.read": "inventory"}
    assert good.parent is not None
    assert bad.attributes == {
        "planner_mcp.store": "file",
        "planner_mcp.store.read": "docs",
        "error.type": "LookupError",
    }
    assert bad.status.status_code is StatusCode.ERROR and not bad.status.description
    assert not bad.events


def test_an_llm_request_is_a_genai_client_span_with_its_token_usage_and_is_measured(
    signals: OtelSignals, exported: Exported
) -> None:
    request = LLMRequest(model="test-model", host="127.0.0.1", structured=True)
    with signals.llm_request(request) as exchange:
        exchange.replied(model="test-model-2026", input_tokens=812, output_tokens=97, finish="stop")
    span = exported.span("chat test-model")
    assert span.kind is SpanKind.CLIENT
    assert span.attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.system": "openai",
        "gen_ai.request.model": "test-model", "gen_ai.output.type": "json", "server.address": "127.0.0.1",
        "gen_ai.response.model": "test-model-2026", "gen_ai.usage.input_tokens": 812,
        "gen_ai.usage.output_tokens": 97, "gen_ai.response.finish_reasons": ("stop",),
    }  # fmt: skip
    usage = {
        attributes["gen_ai.token.type"]: point.sum
        for attributes, point in exported.histogram("gen_ai.client.token.usage")
    }
    assert usage == {"input": 812, "output": 97}
    [(attributes, point)] = exported.histogram("gen_ai.client.operation.duration")
    assert attributes["gen_ai.response.model"] == "test-model-2026" and point.count == 1


def test_an_llm_request_that_failed_carries_the_clients_error_kind_and_one_that_raised_its_type(
    signals: OtelSignals, exported: Exported
) -> None:
    with signals.llm_request(LLMRequest(model="a", host="llm.internal", structured=False)) as exchange:
        exchange.failed("llm_timeout")
    with pytest.raises(RuntimeError), signals.llm_request(LLMRequest(model="b", host="llm.internal", structured=False)):
        raise RuntimeError("the reply quoted the runbook")
    timed_out, raised = exported.span("chat a"), exported.span("chat b")
    assert timed_out.attributes is not None and timed_out.attributes["error.type"] == "llm_timeout"
    assert raised.attributes is not None and raised.attributes["error.type"] == "RuntimeError"
    assert {span.status.status_code for span in (timed_out, raised)} == {StatusCode.ERROR}
    assert not raised.events and not raised.status.description
    kinds = {attributes["error.type"] for attributes, _ in exported.histogram("gen_ai.client.operation.duration")}
    assert kinds == {"llm_timeout", "RuntimeError"}
    assert exported.histogram("gen_ai.client.token.usage") == []
