"""Each tool's output schema describes that tool's result: the AgentOutput envelope, with `data`, `plan` and
`llm_response` typed as the tool fills them, small enough to put in front of a model.

Every result a tool gives, success or error, must validate against the schema it is listed with: a client may
check it (the MCP SDK's client does, for results that are not errors), and a framework shows it to its model.
"""

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import Client

from server import Settings
from tests.conftest import DEFAULT_TOOLS, PLAN, call, connect
from tests.peers.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio

_ANALYSIS = {"analysis": "pve02 runs hot.", "confidence": 0.9, "assumptions": []}

SUCCEEDS: list[tuple[str, dict[str, Any], str | None]] = [
    ("read_docs", {"name": "vm-provisioning"}, None),
    ("list_docs", {}, None),
    ("read_inventory", {}, None),
    ("generate_plan", {"description": "Add a VM", "docs": ["vm-provisioning"]}, json.dumps(PLAN)),
    ("generate_plan", {"description": "Add a VM"}, "not a plan"),  # escalated, the raw reply in llm_response
    ("analyze", {"description": "Why is pve02 slow?", "context": [{"key": "pool", "value": "prod"}]},
     json.dumps(_ANALYSIS)),
    ("read_logs", {"limit": 5}, None),
]  # fmt: skip
"""A call of each tool that it answers, and the LLM's reply where it asks one."""

FAILS: list[tuple[str, dict[str, Any]]] = [
    ("read_docs", {"name": "absent"}),
    ("list_docs", {"typo": 1}),
    ("read_inventory", {"name": "../etc"}),
    ("generate_plan", {"description": ""}),
    ("analyze", {"description": "x", "docs": ["absent"]}),
    ("read_logs", {"limit": 0}),
]
"""A call of each tool that ends in ERROR."""

MAX_TOOLS_LIST_CHARS = 36_000
"""The most the default tools/list may take as compact JSON. Some frameworks put every output schema into every
request to their model; one shared 7 KB envelope per tool took this list past 50,000 characters."""


async def _schemas(client: Client) -> dict[str, dict[str, Any]]:
    with anyio.fail_after(10):
        tools = (await client.list_tools()).tools
    return {tool.name: tool.output_schema or {} for tool in tools}


async def _structured(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    # The SDK's client checks a result against its schema only when it is not an error: each is checked here too.
    result, output = await call(client, tool, arguments)
    return bool(result.is_error), output


def _problems(schema: dict[str, Any], output: dict[str, Any]) -> list[str]:
    Draft202012Validator.check_schema(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in Draft202012Validator(schema).iter_errors(output)
    ]


def _keywords(node: Any) -> set[str]:
    """Every keyword used in a schema (the names under `properties` and `$defs` are names, not keywords)."""
    if isinstance(node, list):
        return set().union(*map(_keywords, node))
    if not isinstance(node, dict):
        return set()
    found = set(node) - {"properties", "$defs"}
    for key, value in node.items():
        subs = value.values() if key in ("properties", "$defs") else [value]
        found |= set().union(*map(_keywords, subs))
    return found


async def test_every_tools_results_and_errors_validate_against_its_own_output_schema(
    llm_settings: Settings, llm: FakeOpenAI
) -> None:
    async with connect(llm_settings) as client:
        schemas = await _schemas(client)
        assert sorted(schemas) == sorted(DEFAULT_TOOLS)
        for tool, arguments, reply in SUCCEEDS:
            if reply is not None:
                llm.enqueue(Reply.text(reply))
            failed, output = await _structured(client, tool, arguments)
            assert not failed, output["error"]
            assert not _problems(schemas[tool], output), (tool, _problems(schemas[tool], output))
        for tool, arguments in FAILS:
            failed, output = await _structured(client, tool, arguments)
            assert failed and output["error"] is not None, tool
            assert not _problems(schemas[tool], output), (tool, _problems(schemas[tool], output))
    assert llm.pending == 0


async def test_a_result_is_held_to_its_own_tools_schema_not_to_any_envelope(
    llm_settings: Settings, llm: FakeOpenAI
) -> None:
    # One tool's result under another's schema is refused: the schemas say which fields each tool fills.
    llm.enqueue(Reply.text(json.dumps(PLAN)))
    async with connect(llm_settings) as client:
        schemas = await _schemas(client)
        _, docs = await _structured(client, "read_docs", {"name": "vm-provisioning"})
        _, plan = await _structured(client, "generate_plan", {"description": "Add a VM"})
    assert any(p.startswith("data") for p in _problems(schemas["list_docs"], docs))
    assert any(p.startswith("plan") for p in _problems(schemas["read_docs"], plan))
    assert any(p.startswith("provenance") for p in _problems(schemas["read_inventory"], plan))
    assert not _problems(schemas["generate_plan"], plan)


async def test_data_plan_and_llm_response_are_typed_for_the_tool_that_fills_them(
    make_settings: Callable[..., Settings],
) -> None:
    async with connect(make_settings()) as client:
        schemas = await _schemas(client)

    def typed(tool: str, field: str) -> dict[str, Any]:
        prop: dict[str, Any] = schemas[tool]["properties"][field]
        [shape] = [branch for branch in prop.get("anyOf", [prop]) if branch != {"type": "null"}] or [{}]
        ref = shape.get("$ref", "")
        found: dict[str, Any] = schemas[tool]["$defs"][ref.rsplit("/", 1)[-1]] if ref else shape
        return found

    assert set(typed("read_docs", "data")["properties"]) == {"name", "format", "content"}
    assert typed("read_inventory", "data") == typed("read_docs", "data")
    assert typed("list_docs", "data")["properties"]["docs"]["items"] == {"type": "string"}
    assert set(typed("read_logs", "data")["properties"]) == {"agent_id", "entries"}
    assert "steps" in typed("generate_plan", "plan")["properties"]
    assert typed("analyze", "llm_response")["type"] == "string"
    for tool in ("read_docs", "list_docs", "read_inventory", "read_logs"):
        assert typed(tool, "plan") == typed(tool, "llm_response") == {}, tool  # null only
    for tool in ("generate_plan", "analyze"):
        assert typed(tool, "data") == {}, tool


async def test_each_schema_defines_only_what_it_uses_and_the_list_stays_small(
    make_settings: Callable[..., Settings],
) -> None:
    async with connect(make_settings()) as client:
        with anyio.fail_after(10):
            listed = await client.list_tools()
    for tool in listed.tools:
        schema = tool.output_schema or {}
        text = json.dumps(schema)
        unused = [name for name in schema.get("$defs", {}) if f'"#/$defs/{name}"' not in text]
        assert not unused, (tool.name, unused)
        assert "title" not in _keywords(schema), tool.name  # pydantic's titles only repeat the names
    size = len(json.dumps(listed.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":")))
    assert size <= MAX_TOOLS_LIST_CHARS
