"""Resources and the prompt go through the gate like tools: allowed by the policy, refused and recorded if not."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import TextContent, TextResourceContents

from server import Settings
from server.settings import BUNDLED_DATA
from tests.conftest import connect, policy_file, rows
from tests.file_access import file_accesses_under

pytestmark = pytest.mark.anyio


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
    ("uri", "kind"),
    [
        ("docs://../secrets", "INVALID_NAME"),
        ("docs://a%2F..%2Fb", "INVALID_NAME"),
        ("vault://secret/data/x", "FORBIDDEN_ACTION"),
    ],
)
async def test_a_resource_outside_the_store_is_refused_recorded_and_reads_nothing(
    make_settings: Callable[..., Settings], ledger_path: Path, uri: str, kind: str
) -> None:
    async with connect(make_settings()) as client:
        with file_accesses_under(BUNDLED_DATA) as seen, pytest.raises(MCPError, match=kind):
            await client.read_resource(uri)
    assert seen == []
    [refusal] = rows(ledger_path)
    assert (refusal["error_type"], refusal["refused"], refusal["notes"]) == (kind, 1, f"resources/read {uri}")


async def test_a_policy_without_read_docs_has_no_docs_resources_and_refuses_a_read_on_the_record(
    make_settings: Callable[..., Settings], ledger_path: Path, tmp_path: Path
) -> None:
    policy = policy_file(tmp_path / "policy.toml", allowed_side_effects=["read_inventory"])
    async with connect(make_settings(policy_path=policy)) as client:
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        prompts = (await client.list_prompts()).prompts
        with file_accesses_under(BUNDLED_DATA) as seen, pytest.raises(MCPError, match="FORBIDDEN_ACTION"):
            await client.read_resource("docs://backup-restore")
    assert templates == ["inventory://{name}"] and prompts == []
    assert seen == []
    assert [(r["action"], r["error_type"]) for r in rows(ledger_path)] == [("read_docs", "FORBIDDEN_ACTION")]


async def test_the_planning_prompt_frames_the_request_and_is_recorded(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        prompt = await client.get_prompt("plan_request", {"description": "Add a VM", "constraints": "No downtime"})
        with pytest.raises(MCPError, match="INVALID_INPUT"):
            await client.get_prompt("plan_request", {"description": "x" * 5000})
        with pytest.raises(MCPError, match="FORBIDDEN_ACTION"):
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
