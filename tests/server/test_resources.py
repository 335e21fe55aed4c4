"""Resources and the prompt go through the gate like tools: allowed by the policy, refused and recorded if not."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent, TextResourceContents

from server import Settings
from server.config.settings import BUNDLED_DATA
from tests.conftest import connect, policy_file, rows
from tests.file_access import file_accesses_under
from tests.peers.openai_server import FakeOpenAI

pytestmark = pytest.mark.anyio

_INVALID_PARAMS = -32602


def _not_found(mode: str) -> int:
    """The code of a resource that does not exist: -32002 in 2025-11-25 (the spec's "Resource not found"), -32602
    from 2026-07-28 (SEP-2164)."""
    return -32002 if mode == "legacy" else _INVALID_PARAMS


async def test_the_default_policy_offers_the_store_templates_the_policy_and_the_prompt(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        resources = [r.uri for r in (await client.list_resources()).resources]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        prompts = [
            (p.name, [(a.name, a.required) for a in p.arguments or []]) for p in (await client.list_prompts()).prompts
        ]
    assert [str(uri) for uri in resources] == ["policy://effective", "inventory://proxmox"]
    assert templates == ["docs://{name}", "inventory://{name}"]
    assert prompts == [("plan_request", [("description", True), ("constraints", False)])]


async def test_a_runbook_read_as_a_resource_is_recorded_like_the_tool_call(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        result = await client.read_resource("docs://backup-restore")
    [content] = result.contents
    assert isinstance(content, TextResourceContents) and content.mime_type == "text/markdown"
    assert content.text == (BUNDLED_DATA / "docs" / "backup-restore.md").read_text(encoding="utf-8")
    [intent] = rows(ledger_path, "call_intents")
    [outcome] = rows(ledger_path)
    assert (intent["action"], intent["notes"]) == ("read_docs", "resources/read docs://backup-restore")
    assert (outcome["decision"], outcome["intent_id"]) == ("EXECUTE", intent["id"])
    assert content.meta is not None and content.meta["planner-mcp/request_id"] == outcome["request_id"]


async def test_the_effective_policy_says_what_the_agent_can_reach(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    async with connect(make_settings()) as client:
        [content] = (await client.read_resource("policy://effective")).contents
    assert isinstance(content, TextResourceContents)
    policy = json.loads(content.text)
    assert (policy["agent_id"], policy["tier"], policy["confidence_threshold"]) == ("llm-planner-001", 0, 0.7)
    assert "ssh" in policy["forbidden_actions"] and "read_logs" in policy["allowed_actions"]
    assert policy["registered_tools"] == ["read_docs", "list_docs", "read_inventory", "generate_plan", "analyze",
                                          "read_logs"]  # fmt: skip
    assert policy["ledger"] == str(ledger_path)
    assert [r["action"] for r in rows(ledger_path)] == ["read_policy"]


@pytest.mark.parametrize(
    ("uri", "kind", "says", "exists"),
    [
        ("docs://../secrets", "INVALID_NAME", "Invalid arguments for resource docs://{name}: name:", True),
        ("docs://a%2F..%2Fb", "INVALID_NAME", "Invalid arguments for resource docs://{name}: name:", True),
        (
            "vault://secret/data/x",
            "FORBIDDEN_ACTION",
            "'vault://secret/data/x' is not a resource of this server",
            False,
        ),
        ("file:///etc/passwd", "FORBIDDEN_ACTION", "'file:///etc/passwd' is not a resource of this server", False),
        ("policy://raw", "FORBIDDEN_ACTION", "'policy://raw' is not a resource of this server", False),
        # A tool's name is not a resource: it reaches no tool.
        ("list_docs", "FORBIDDEN_ACTION", "'list_docs' is not a resource of this server", False),
        ("read_docs", "FORBIDDEN_ACTION", "'read_docs' is not a resource of this server", False),
    ],
)
async def test_a_resource_outside_the_store_is_refused_recorded_and_reads_nothing(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str, uri: str, kind: str, says: str, exists: bool
) -> None:
    async with connect(make_settings(), mode) as client:
        with file_accesses_under(BUNDLED_DATA) as seen, pytest.raises(MCPError) as refused:
            await client.read_resource(uri)
    assert seen == []
    error = refused.value.error
    assert (error.code, error.data) == (_INVALID_PARAMS if exists else _not_found(mode), {"uri": uri})
    assert error.message.startswith(f"{kind}: ") and says in error.message
    assert rows(ledger_path, "call_intents") == []
    [refusal] = rows(ledger_path)
    assert (refusal["error_type"], refusal["refused"], refusal["notes"]) == (kind, 1, f"resources/read {uri}")
    assert refusal["action"] == ("read_docs" if exists else uri)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("docs://no-such-runbook", "There is no docs entry named 'no-such-runbook'"),
        ("inventory://no-such-cluster", "There is no inventory entry named 'no-such-cluster'"),
    ],
)
async def test_a_missing_entry_is_a_resource_not_found_in_both_eras(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str, uri: str, says: str
) -> None:
    async with connect(make_settings(), mode) as client:
        with pytest.raises(MCPError) as missing:
            await client.read_resource(uri)
    error = missing.value.error
    assert (error.code, error.data) == (_not_found(mode), {"uri": uri})
    assert error.message.startswith("NOT_FOUND: ") and says in error.message
    [outcome] = rows(ledger_path)
    assert (outcome["error_type"], outcome["refused"], outcome["notes"]) == ("NOT_FOUND", 0, f"resources/read {uri}")


async def test_a_policy_without_read_docs_has_no_docs_resources_and_refuses_a_read_on_the_record(
    make_settings: Callable[..., Settings], ledger_path: Path, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path / "policy.toml", allowed_side_effects=["read_inventory"])
    async with connect(make_settings(policy_path=policy)) as client:
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        prompts = (await client.list_prompts()).prompts
        with file_accesses_under(BUNDLED_DATA) as seen, pytest.raises(MCPError, match="FORBIDDEN_ACTION") as refused:
            await client.read_resource("docs://backup-restore")
        with pytest.raises(MCPError, match="'plan_request' is not a prompt of this server"):
            await client.get_prompt("plan_request", {"description": "Add a VM"})
    assert templates == ["inventory://{name}"] and prompts == []
    assert seen == []
    assert "'docs://backup-restore' is not a resource of this server" in refused.value.error.message
    assert [(r["action"], r["error_type"], r["refused"]) for r in rows(ledger_path)] == [
        ("docs://backup-restore", "FORBIDDEN_ACTION", 1),
        ("plan_request", "FORBIDDEN_ACTION", 1),
    ]


async def test_the_planning_prompt_frames_the_request_and_is_recorded(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        prompt = await client.get_prompt("plan_request", {"description": "Add a VM", "constraints": "No downtime"})
        with pytest.raises(MCPError, match="INVALID_INPUT: Invalid arguments for prompt plan_request: description"):
            await client.get_prompt("plan_request", {"description": "x" * 5000})
        with pytest.raises(MCPError, match="FORBIDDEN_ACTION: Action 'run_terraform' is forbidden"):
            await client.get_prompt("run_terraform", {})
    [message] = prompt.messages
    assert isinstance(message.content, TextContent)
    text = message.content.text
    assert message.role == "user" and "Add a VM" in text and "Constraints: No downtime" in text
    assert "generate_plan" in text and "ESCALATE" in text
    recorded = [(r["action"], r["error_type"], r["notes"]) for r in rows(ledger_path)]
    assert recorded == [
        ("plan_request", None, "prompts/get plan_request"),
        ("plan_request", "INVALID_INPUT", "prompts/get plan_request"),
        ("run_terraform", "FORBIDDEN_ACTION", "prompts/get run_terraform"),
    ]


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("generate_plan", {"description": "Add a VM to the prod pool"}),
        ("analyze", {"description": "Which node is busiest?"}),
        ("read_docs", {"name": "backup-restore"}),
        ("read_policy", {}),
    ],
)
async def test_a_prompt_that_names_a_tool_is_refused_and_recorded_and_runs_nothing(
    llm_settings: Settings, llm: FakeOpenAI, ledger_path: Path, mode: str, name: str, arguments: dict[str, str]
) -> None:
    async with connect(llm_settings, mode) as client:
        with file_accesses_under(BUNDLED_DATA) as seen, pytest.raises(MCPError) as refused:
            await client.get_prompt(name, arguments)
    error = refused.value.error
    assert error.code == _INVALID_PARAMS
    assert error.message == f"FORBIDDEN_ACTION: {name!r} is not a prompt of this server."
    assert seen == [] and llm.requests == []  # nothing read, no LLM asked
    assert rows(ledger_path, "call_intents") == []
    [refusal] = rows(ledger_path)
    assert (refusal["action"], refusal["error_type"], refusal["refused"]) == (name, "FORBIDDEN_ACTION", 1)
    assert refusal["notes"] == f"prompts/get {name}"
