"""A server with OpenTelemetry on, driven by a real client in memory: the request's SERVER span (the SDK's) is
the child of the trace context the client sent in `_meta` and carries the gate's verdict; the store read, the LLM
request (with the tokens the endpoint counted) and the ledger's writes are its children; and nothing a caller
sent or a store holds reaches any attribute of any span or metric point."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import RequestParamsMeta
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from server import Settings, build_server
from server.config.settings import LLMConfig
from server.telemetry.otel import OtelSignals
from tests.conftest import API_KEY, PLAN, call
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.telemetry.otel.exported import Exported

pytestmark = pytest.mark.anyio

_AGENT = trace.get_tracer("an agent")


def _serving(settings: Settings, signals: OtelSignals) -> Client:
    return Client(build_server(settings, signals=signals))


_TRACE_ID, _PARENT_ID = 0x5B8EFFF798038103D269B633813FC60C, 0xEEE19B7EC3C1B174
_TRACEPARENT = f"00-{_TRACE_ID:032x}-{_PARENT_ID:016x}-01"
_META = RequestParamsMeta(traceparent=_TRACEPARENT)  # type: ignore[typeddict-unknown-key]
"""A host's trace context, as a W3C `traceparent` in the request's `_meta`."""


async def test_the_request_span_is_the_child_of_the_trace_context_in_meta_and_the_parent_of_the_read_and_ledger_writes(
    make_settings: Callable[..., Settings], signals: OtelSignals, exported: Exported
) -> None:
    async with _serving(make_settings(), signals) as client:
        with _AGENT.start_as_current_span("the test's own context, which `_meta` overrides"), anyio.fail_after(15):
            await client.call_tool("read_docs", {"name": "backup-restore"}, meta=_META)
    request = exported.span("tools/call read_docs")
    assert request.kind is SpanKind.SERVER
    assert request.parent is not None and (request.parent.trace_id, request.parent.span_id) == (_TRACE_ID, _PARENT_ID)
    assert request.attributes is not None
    assert request.attributes["planner_mcp.decision"] == "EXECUTE"
    assert request.attributes["planner_mcp.agent.id"] == "llm-planner-001"
    assert request.attributes["planner_mcp.refused"] is False
    for child in ("store read docs", "ledger append call_intents", "ledger append agent_actions"):
        span = exported.span(child)
        assert span.parent is not None and span.parent.span_id == request.context.span_id, child
        assert span.context.trace_id == _TRACE_ID
    [(attributes, point)] = exported.histogram("mcp.server.operation.duration")
    assert (attributes["gen_ai.tool.name"], attributes["planner_mcp.decision"], point.count) == (
        "read_docs",
        "EXECUTE",
        1,
    )


async def test_a_refused_call_says_so_on_its_span_and_a_name_that_is_no_tool_of_ours_is_not_repeated(
    make_settings: Callable[..., Settings], signals: OtelSignals, exported: Exported
) -> None:
    async with _serving(make_settings(), signals) as client:
        with anyio.fail_after(15):
            await client.call_tool("ssh_into_pve01", {"host": "pve01"})
    [request] = [span for span in exported.spans() if span.kind is SpanKind.SERVER and span.name.startswith("tools/")]
    assert request.name == "tools/call"
    assert request.attributes is not None
    assert {name: request.attributes[name] for name in _VERDICT} == {
        "planner_mcp.decision": "ERROR", "planner_mcp.refused": True, "planner_mcp.error.kind": "FORBIDDEN_ACTION",
        "gen_ai.tool.name": "unknown", "error.type": "tool_error",
    }  # fmt: skip


_VERDICT = ("planner_mcp.decision", "planner_mcp.refused", "planner_mcp.error.kind", "gen_ai.tool.name", "error.type")


async def test_a_plan_asks_the_llm_in_a_chat_span_under_the_request_with_the_tokens_the_endpoint_counted(
    llm_settings: Settings, llm: FakeOpenAI, signals: OtelSignals, exported: Exported
) -> None:
    llm.enqueue(
        Reply.text(json.dumps(PLAN), usage={"prompt_tokens": 812, "completion_tokens": 97, "total_tokens": 909})
    )
    async with _serving(llm_settings, signals) as client:
        await call(client, "generate_plan", {"description": "Add a VM to prod"})
    request, chat = exported.span("tools/call generate_plan"), exported.span("chat test-model")
    assert chat.kind is SpanKind.CLIENT
    assert chat.parent is not None and chat.parent.span_id == request.context.span_id
    assert chat.attributes is not None
    assert {name: chat.attributes.get(name) for name in _GENAI} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "test-model",
        "gen_ai.response.model": "test-model", "gen_ai.usage.input_tokens": 812, "gen_ai.usage.output_tokens": 97,
        "server.address": "127.0.0.1",
    }  # fmt: skip
    usage = {a["gen_ai.token.type"]: p.sum for a, p in exported.histogram("gen_ai.client.token.usage")}
    assert usage == {"input": 812, "output": 97}
    assert len(exported.histogram("gen_ai.client.operation.duration")) == 1


_GENAI = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
          "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "server.address")  # fmt: skip


async def test_no_secret_and_no_argument_value_reaches_any_attribute_of_any_span_or_metric_point(
    make_settings: Callable[..., Settings], llm_config: Callable[..., LLMConfig], llm: FakeOpenAI,
    signals: OtelSignals, exported: Exported, tmp_path: Path,
) -> None:  # fmt: skip
    stored_key, leaked = "AKIA" + "Q7" * 8, "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    data = tmp_path / "data"
    (data / "docs").mkdir(parents=True)
    (data / "inventory").mkdir()
    (data / "docs" / "quiet-heron.md").write_text(f"# Keys\n\nThe backup user's key is {stored_key}.\n")
    (data / "inventory" / "proxmox.json").write_text(json.dumps({"hosts": ["pve-marmoset"]}))
    llm.enqueue(Reply.text(json.dumps(PLAN)))
    settings = make_settings(data_dir=data, llm=llm_config())
    sent: dict[str, dict[str, Any]] = {
        "read_docs": {"name": "quiet-heron"},
        "generate_plan": {"description": f"Rotate {API_KEY} on the amber-lynx pool", "context": {"gh": leaked}},
        "read_inventory": {"name": "../../etc/shadow-tangerine"},
        f"fetch_{leaked}": {"path": "/etc/walrus"},
    }
    async with _serving(settings, signals) as client:
        for tool, arguments in sent.items():
            with anyio.fail_after(15):
                await client.call_tool(tool, arguments)
    said = list(_everything_said(exported))
    secrets = [API_KEY, stored_key, leaked, "Keys", "backup user", "pve-marmoset"]
    values = ["quiet-heron", "amber-lynx", "tangerine", "walrus"]
    assert [(s, n) for s in said for n in secrets + values if n in s] == []
    assert any(s == "tools/call" for s in said)  # the unknown name's span, named by its method alone
    assert {"EXECUTE", "FORBIDDEN_ACTION"} <= set(said)  # the search looked where the gate's verdicts are


def _everything_said(exported: Exported) -> Iterator[str]:
    """Every name and attribute value the spans and metric points carry, as text."""
    for span in exported.spans():
        yield span.name
        yield from _texts(span.attributes)
        yield from _texts(span.resource.attributes)
        yield span.status.description or ""
        for event in span.events:
            yield event.name
            yield from _texts(event.attributes)
        for link in span.links:
            yield from _texts(link.attributes)
    for point in exported.points():
        yield point.metric
        yield from _texts(point.attributes)


def _texts(attributes: Any) -> Iterator[str]:
    for name, value in (attributes or {}).items():
        yield name
        yield from (str(v) for v in value) if isinstance(value, tuple) else (str(value),)
