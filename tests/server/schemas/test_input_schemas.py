"""Every tool's input schema is one a framework can use as it is, and null means the same on every tool.

OpenAI's strict mode (which openai-agents asks for by default, converting each MCP tool's input schema with its
`ensure_strict_json_schema`, and falling back, with an error logged on every turn, when that fails) takes a subset
of JSON Schema. The rules checked here, for every object schema reachable from a tool's input schema:

1. `additionalProperties` is present and false. The converter refuses an object whose `additionalProperties` is
   true (an open object such as `context: {...any keys}`), and OpenAI wants it false everywhere.
2. It lists its `properties` (an empty mapping for no arguments): strict mode has no object of unknown keys.
3. Every property is in `required` or admits null. Conversion makes every property required, so an argument the
   contract leaves optional must accept null, which a strict model then sends to leave it out.
4. No `oneOf`, `allOf`, `not`, `patternProperties` or `if`: strict mode takes `anyOf` only.
5. No `$ref`: openai-agents (0.24, as the framework tests install it) refuses to make an MCP tool strict whose input
   schema holds a reference, whatever it points to.

And null itself: an optional argument given as null is accepted on every tool and does what leaving it out does.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from server import Settings
from tests.conftest import DEFAULT_TOOLS, PLAN, call, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio

_REFUSED = ("oneOf", "allOf", "not", "patternProperties", "if", "$ref")

REQUIRED: dict[str, dict[str, Any]] = {
    "read_docs": {"name": "vm-provisioning"},
    "list_docs": {},
    "read_inventory": {},
    "generate_plan": {"description": "Add a VM"},
    "analyze": {"description": "Why is pve02 slow?"},
    "read_logs": {},
}
"""A call of each tool with only its required arguments."""


def _subschemas(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(node.get("properties", {}).values()) + list(node.get("anyOf", []))
    return found + ([node["items"]] if isinstance(node.get("items"), dict) else [])


def _strict_problems(node: dict[str, Any], at: str) -> list[str]:
    """Where `node` (and all below it) breaks the rules in this module's docstring."""
    problems = [f"{at}: uses {key}" for key in _REFUSED if key in node]
    if node.get("type") == "object":
        properties = node.get("properties")
        required = set(node.get("required", ()))
        if node.get("additionalProperties") is not False:
            problems.append(f"{at}: additionalProperties is not false")
        if not isinstance(properties, dict):
            problems.append(f"{at}: no properties")
        for name, prop in (properties or {}).items():
            if name not in required and {"type": "null"} not in prop.get("anyOf", []):
                problems.append(f"{at}.{name}: optional but not nullable")
    for index, sub in enumerate(_subschemas(node)):
        problems += _strict_problems(sub, f"{at}/{index}")
    return problems


async def _input_schemas(settings: Settings) -> dict[str, dict[str, Any]]:
    async with connect(settings) as client:
        with anyio.fail_after(10):
            tools = (await client.list_tools()).tools
    return {tool.name: tool.input_schema for tool in tools}


async def test_every_input_schema_converts_to_openai_strict_mode(make_settings: Callable[..., Settings]) -> None:
    schemas = await _input_schemas(make_settings())
    assert sorted(schemas) == sorted(DEFAULT_TOOLS)
    problems = {name: _strict_problems(schema, name) for name, schema in schemas.items()}
    assert not any(problems.values()), problems


def test_the_strictness_check_finds_an_open_object_a_reference_and_an_optional_argument_refusing_null() -> None:
    # The check itself, on the shapes that made openai-agents fall back (`context`, a reference) and refuse null.
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "context": {"type": "object", "additionalProperties": True},
            "limit": {"type": "integer", "default": 20},
            "fact": {"$ref": "#/$defs/Fact"},
        },
        "required": ["fact"],
    }
    assert _strict_problems(schema, "t") == [
        "t.context: optional but not nullable",
        "t.limit: optional but not nullable",
        "t/0: additionalProperties is not false",
        "t/0: no properties",
        "t/2: uses $ref",
    ]


def _optional_arguments(schema: dict[str, Any]) -> list[str]:
    return [name for name in schema["properties"] if name not in schema.get("required", [])]


async def test_null_for_any_optional_argument_is_taken_as_not_given_on_every_tool(
    llm_settings: Settings, llm: FakeOpenAI, ledger_path: Path
) -> None:
    schemas = await _input_schemas(llm_settings)
    cases = [(tool, name) for tool, schema in schemas.items() for name in _optional_arguments(schema)]
    assert {tool for tool, _ in cases} == {"read_inventory", "generate_plan", "analyze", "read_logs"}
    replies = {"generate_plan": json.dumps(PLAN), "analyze": json.dumps({"analysis": "ok", "confidence": 0.9})}
    async with connect(llm_settings) as client:
        for tool, name in cases:
            outputs = []
            for arguments in (REQUIRED[tool], {**REQUIRED[tool], name: None}):
                if tool in replies:
                    llm.enqueue(Reply.text(replies[tool]))
                result, output = await call(client, tool, arguments)
                assert not result.is_error, (tool, name, output["error"])
                outputs.append(output)
            omitted, null = outputs
            assert (null["decision"], null["data"] is None) == (omitted["decision"], omitted["data"] is None)
    recorded = [row for row in rows(ledger_path) if row["action"] != "read_logs"]
    by_pair = [(recorded[i], recorded[i + 1]) for i in range(0, len(recorded), 2)]
    for omitted_row, null_row in by_pair:  # the ledger records the same arguments: null was the default
        assert json.loads(null_row["arguments"]) == json.loads(omitted_row["arguments"]), null_row["action"]
    prompts = [request.json["messages"] for request in llm.chat_requests]
    assert all(prompts[i][1:] == prompts[i + 1][1:] for i in range(0, len(prompts), 2))


async def test_null_for_a_required_argument_is_still_refused(make_settings: Callable[..., Settings]) -> None:
    async with connect(make_settings()) as client:
        result, output = await call(client, "read_docs", {"name": None})
    assert result.is_error and output["error"]["type"] == "INVALID_INPUT"
    assert "name" in output["error"]["message"]


async def test_context_as_key_value_facts_is_shown_to_the_model_as_the_same_object(
    llm_settings: Settings, llm: FakeOpenAI, ledger_path: Path
) -> None:
    facts = [{"key": "pool", "value": "prod"}, {"key": "zone", "value": "a"}]
    sent: list[Any] = [{"pool": "prod", "zone": "a"}, facts]
    async with connect(llm_settings) as client:
        for context in sent:
            llm.enqueue(Reply.text(json.dumps(PLAN)))
            result, _ = await call(client, "generate_plan", {"description": "Add a VM", "context": context})
            assert not result.is_error
    first, second = (request.json["messages"] for request in llm.chat_requests)
    assert first == second and '<data source="caller-context">' in first[1]["content"]
    assert [json.loads(row["arguments"])["context"] for row in rows(ledger_path)] == [{"pool": "prod", "zone": "a"}] * 2


async def test_a_key_given_twice_in_context_is_refused_by_name(make_settings: Callable[..., Settings]) -> None:
    facts = [{"key": "pool", "value": "prod"}, {"key": "pool", "value": "dev"}]
    async with connect(make_settings()) as client:
        result, output = await call(client, "analyze", {"description": "x", "context": facts})
    assert result.is_error and output["error"]["type"] == "INVALID_INPUT"
    assert "'pool' more than once" in output["error"]["message"]
