"""A tool's answer reaches the wire exactly as the SDK would send a plain CallToolResult of it, in every protocol
version, though its first dump is the parts already made rather than a walk of the whole output again."""

import json
import math
from datetime import UTC, datetime

import pytest
from mcp.server.runner import _dump_result
from mcp.types import CallToolResult, TextContent
from mcp_types.methods import SERVER_RESULTS, serialize_server_result

from contracts import AgentOutput, Decision, ErrorInfo, ErrorKind, Provenance, SideEffect, SourceRef
from server.app.server import to_call_result

_VERSIONS = sorted({version for method, version in SERVER_RESULTS if method == "tools/call"})

_READ = AgentOutput(
    agent_id="a", version="1", timestamp="2026-12-06T00:00:00.000Z", action="read_inventory",
    decision=Decision.EXECUTE, confidence=1.0, request_id="r" * 32,
    side_effects=[SideEffect(type="read_inventory", target="inventory/proxmox")],
    data={"name": "proxmox", "format": "json", "content": {"nodes": [{"name": "pve1", "memory": None}], "ok": True}},
    provenance=Provenance(tool="read_inventory", sources=[SourceRef(kind="inventory", name="proxmox", store="file")]),
)  # fmt: skip
_REFUSED = AgentOutput(
    agent_id="a", version="1", timestamp="2026-12-06T00:00:00.000Z", action="ssh", decision=Decision.ERROR,
    confidence=0.0, request_id="s" * 32, provenance=Provenance(tool="ssh"),
    error=ErrorInfo(type=ErrorKind.FORBIDDEN_ACTION, message="no", triggering_input="{}", partial_progress="none",
                    recommended_action="stop"),
)  # fmt: skip


_ODD = _READ.model_copy(update={"data": {"pair": (1, 2), "when": datetime(2026, 12, 6, tzinfo=UTC), "nan": math.nan}})
"""Data that is not already JSON's (a tuple, a datetime, NaN): the SDK's own dump for the wire settles it."""


def _plain(output: AgentOutput) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=output.sealed_json())],
        structured_content=output.model_dump(mode="json"),
        is_error=output.decision is Decision.ERROR,
    )


@pytest.mark.parametrize("version", _VERSIONS)
@pytest.mark.parametrize("output", [_READ, _REFUSED, _ODD], ids=["read", "refused", "odd data"])
def test_the_answer_on_the_wire_is_the_one_a_plain_call_tool_result_gives(output: AgentOutput, version: str) -> None:
    ours = serialize_server_result("tools/call", version, _dump_result(to_call_result(output)))
    plain = serialize_server_result("tools/call", version, _dump_result(_plain(output)))
    assert ours == plain
    assert json.dumps(ours) == json.dumps(plain)  # the same keys in the same order, too


def test_any_other_dump_of_the_answer_is_pydantics_own() -> None:
    ours, plain = to_call_result(_READ), _plain(_READ)
    assert ours.model_dump() == plain.model_dump()
    assert ours.model_dump(by_alias=True, mode="json") == plain.model_dump(by_alias=True, mode="json")
    assert ours.model_dump_json(by_alias=True, exclude_none=True) == plain.model_dump_json(
        by_alias=True, exclude_none=True
    )
