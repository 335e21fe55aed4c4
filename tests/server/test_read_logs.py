"""read_logs: an agent reads its own recent ledger entries through the gate, and only its own."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import REDACTED
from server import Settings
from tests.conftest import API_KEY, call, call_once, connect, policy_file, rows

pytestmark = pytest.mark.anyio

PASSWORD = "correct-horse-battery-staple"
"""A secret no value pattern recognises: only its argument's name marks it."""


def _entries(output: dict[str, Any]) -> list[dict[str, Any]]:
    assert output["decision"] == "EXECUTE", output["error"]
    entries: list[dict[str, Any]] = output["data"]["entries"]
    return entries


async def test_the_default_policy_lists_read_logs_as_a_read_only_tool(make_settings: Callable[..., Settings]) -> None:
    async with connect(make_settings()) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert "read_logs" in tools
    assert tools["read_logs"].annotations is not None and tools["read_logs"].annotations.read_only_hint is True


@pytest.mark.parametrize(
    "policy",
    [
        {"allowed_side_effects": ["read_docs", "read_inventory", "generate_plan", "llm_inference"]},
        {"forbidden_actions": ["ssh", "read_logs"]},
    ],
    ids=["not-allowed", "forbidden"],
)
async def test_a_policy_without_read_logs_hides_it_and_refuses_a_call_to_it_on_the_record(
    make_settings: Callable[..., Settings], ledger_path: Path, tmp_path: Path, policy: dict[str, Any]
) -> None:
    settings = make_settings(policy_path=policy_file(tmp_path / "policy.toml", **policy))
    async with connect(settings) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        result, output = await call(client, "read_logs", {})
    assert "read_logs" not in names and "read_docs" in names
    assert result.is_error and output["error"]["type"] == "FORBIDDEN_ACTION"
    assert "entries" not in json.dumps(output)
    assert rows(ledger_path, "call_intents") == []  # refused at the gate: nothing was read
    [action] = rows(ledger_path)
    assert (action["action"], action["refused"], action["error_type"]) == ("read_logs", 1, "FORBIDDEN_ACTION")
    assert action["request_id"] == output["request_id"]


async def test_read_logs_returns_the_agents_earlier_calls_newest_first_but_not_itself(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        _, docs = await call(client, "read_docs", {"name": "backup-restore"})
        _, listed = await call(client, "list_docs")
        _, ssh = await call(client, "ssh", {"host": "pve01"})
        _, first = await call(client, "read_logs", {})
        _, second = await call(client, "read_logs", {})
    earlier = [ssh, listed, docs]
    entries = _entries(first)
    assert first["data"]["agent_id"] == "llm-planner-001"
    assert [e["request_id"] for e in entries] == [o["request_id"] for o in earlier]
    assert [(e["action"], e["decision"], e["error_type"]) for e in entries] == [
        ("ssh", "ERROR", "FORBIDDEN_ACTION"),
        ("list_docs", "EXECUTE", None),
        ("read_docs", "EXECUTE", None),
    ]
    assert [(e["success"], e["refused"]) for e in entries] == [(False, True), (True, False), (True, False)]
    assert [e["arguments"] for e in entries] == [{"host": "pve01"}, {}, {"name": "backup-restore"}]
    recorded = {r["request_id"]: r["seq"] for r in rows(ledger_path)}
    assert [e["seq"] for e in entries] == [recorded[o["request_id"]] for o in earlier]
    assert entries[0]["seq"] > entries[1]["seq"] > entries[2]["seq"]
    # Its own call is recorded after its answer was read, so it shows up in the next one.
    later = _entries(second)
    assert [e["request_id"] for e in later] == [first["request_id"], *(o["request_id"] for o in earlier)]
    assert (later[0]["action"], later[0]["arguments"]) == ("read_logs", {"limit": 20, "action": None})


async def test_limit_bounds_the_answer_and_action_filters_it(make_settings: Callable[..., Settings]) -> None:
    async with connect(make_settings()) as client:
        _, backup = await call(client, "read_docs", {"name": "backup-restore"})
        await call(client, "list_docs")
        _, node = await call(client, "read_docs", {"name": "node-maintenance"})
        _, ssh = await call(client, "ssh", {})
        _, two = await call(client, "read_logs", {"limit": 2})
        _, docs = await call(client, "read_logs", {"action": "read_docs"})
        _, refused = await call(client, "read_logs", {"action": "ssh", "limit": 1})
        _, none = await call(client, "read_logs", {"action": "generate_plan"})
    assert [e["request_id"] for e in _entries(two)] == [ssh["request_id"], node["request_id"]]
    assert [e["request_id"] for e in _entries(docs)] == [node["request_id"], backup["request_id"]]
    assert [e["request_id"] for e in _entries(refused)] == [ssh["request_id"]]
    assert _entries(none) == []


@pytest.mark.parametrize("limit", [0, 101, True, 1.0, "5"])
async def test_a_limit_out_of_range_or_not_an_integer_is_refused_as_invalid_input(
    make_settings: Callable[..., Settings], ledger_path: Path, limit: object
) -> None:
    result, output = await call_once(make_settings(), "read_logs", {"limit": limit})
    assert result.is_error and output["error"]["type"] == "INVALID_INPUT"
    assert "limit" in output["error"]["message"]
    [action] = rows(ledger_path)
    assert (action["action"], action["refused"], action["error_type"]) == ("read_logs", 1, "INVALID_INPUT")


async def test_read_logs_shows_only_the_calling_agents_entries_of_a_shared_ledger(
    make_settings: Callable[..., Settings], ledger_path: Path, tmp_path: Path
) -> None:
    other = make_settings(policy_path=policy_file(tmp_path / "other.toml", agent_id="other-planner-002"))
    async with connect(make_settings()) as mine, connect(other) as theirs:
        _, my_call = await call(mine, "read_docs", {"name": "backup-restore"})
        _, their_call = await call(theirs, "list_docs")
        _, my_log = await call(mine, "read_logs", {})
        _, their_log = await call(theirs, "read_logs", {"action": "list_docs"})
    assert {r["agent_id"] for r in rows(ledger_path)} == {"llm-planner-001", "other-planner-002"}
    assert [e["request_id"] for e in _entries(my_log)] == [my_call["request_id"]]
    assert [e["request_id"] for e in _entries(their_log)] == [their_call["request_id"]]
    assert their_log["data"]["agent_id"] == "other-planner-002"
    assert their_call["request_id"] not in json.dumps(my_log)


async def test_a_secret_in_earlier_arguments_is_shown_redacted(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        await call(client, "vault_dump", {"api_key": API_KEY, "context": f"the key is {API_KEY}", "password": PASSWORD})
        await call(client, "read_docs", {"name": API_KEY})  # a valid entry name: read, not found, recorded
        _, output = await call(client, "read_logs", {})
    assert API_KEY not in json.dumps(output) and PASSWORD not in json.dumps(output)
    missing, refused = _entries(output)
    assert refused["arguments"] == {"api_key": REDACTED, "context": f"the key is {REDACTED}", "password": REDACTED}
    assert (missing["error_type"], missing["arguments"]) == ("NOT_FOUND", {"name": REDACTED})
    assert API_KEY not in (missing["error_message"] or "")


async def test_a_secret_used_as_an_argument_name_is_shown_redacted(make_settings: Callable[..., Settings]) -> None:
    async with connect(make_settings()) as client:
        await call(client, "vault_dump", {API_KEY: "x"})
        _, output = await call(client, "read_logs", {})
    assert API_KEY not in json.dumps(output)
