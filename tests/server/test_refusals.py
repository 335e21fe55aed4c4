import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, Request

from server import Settings
from tests.conftest import call, call_once, connect, rows

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ssh", "forbidden"),
        ("execute_shell", "forbidden"),
        ("write_secrets", "forbidden"),
        ("read_doc", "not a tool of this server"),
        ("x" * 5000, "not a tool of this server"),
    ],
)
async def test_a_call_to_a_name_that_is_not_registered_is_refused_and_recorded(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str, name: str, says: str
) -> None:
    async with connect(make_settings(), mode) as client:
        result, output = await call(client, name, {"host": "pve01", "command": "reboot"})
    assert result.is_error
    assert output["decision"] == "ERROR" and output["confidence"] == 0.0
    assert output["error"]["type"] == "FORBIDDEN_ACTION"
    assert says in output["error"]["message"]
    assert "read_docs" in output["error"]["recommended_action"]
    assert rows(ledger_path, "call_intents") == []
    [action] = rows(ledger_path)
    assert action["action"] == name[:128]  # bounded, so a hostile name cannot bloat the ledger
    assert (action["decision"], action["success"], action["refused"], action["error_type"]) == (
        "ERROR",
        0,
        1,
        "FORBIDDEN_ACTION",
    )


async def test_refusals_break_the_consecutive_compliant_streak(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    async with connect(make_settings()) as client:
        await call(client, "list_docs")
        await call(client, "list_docs")
        await call(client, "ssh")
        await call(client, "list_docs")
    [metrics] = rows(ledger_path, "agent_metrics", order="agent_id")
    assert (metrics["total_runs"], metrics["compliant_runs"], metrics["consecutive_compliant"]) == (4, 3, 1)
    assert metrics["refused_runs"] == 1


async def test_a_tool_the_policy_leaves_out_cannot_be_called_by_name(
    make_settings: Callable[..., Settings], ledger_path: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'agent_id = "reader"\nagent_role = "observer"\nowner = "o"\nversion = "1"\ntier = 0\n'
        'allowed_side_effects = ["read_docs"]\nforbidden_actions = []\n',
        encoding="utf-8",
    )
    result, output = await call_once(make_settings(policy_path=policy), "read_inventory")
    assert result.is_error and output["error"]["type"] == "FORBIDDEN_ACTION"
    assert output["agent_id"] == "reader"
    assert rows(ledger_path)[0]["agent_id"] == "reader"


async def test_a_secret_sent_as_a_tool_name_is_neither_echoed_nor_recorded(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    secret = "sk-live-0123456789abcdefghijklmn"
    result, output = await call_once(make_settings(), secret, {"token": secret})
    assert result.is_error and secret not in json.dumps(output)
    assert secret.encode() not in b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())


class _UncheckedCall(Request[dict[str, Any], Literal["tools/call"]]):
    """A tools/call whose params go on the wire as given, as a faulty or hostile client can send them."""


@pytest.mark.parametrize(
    ("params", "action", "sent", "problem"),
    [
        ({"name": "ssh", "arguments": "x"}, "ssh", {"arguments": "x"}, "params.arguments: Input should be a valid"),
        ({"name": "read_docs", "arguments": [1]}, "read_docs", {"arguments": [1]}, "params.arguments: Input should"),
        ({"name": 5}, "tools/call", {"name": 5}, "params.name: Input should be a valid string"),
        ({"arguments": {}}, "tools/call", {"arguments": {}}, "params.name: Field required"),
    ],
)
async def test_a_call_the_sdk_rejects_before_the_gate_is_still_recorded_as_a_refusal(
    make_settings: Callable[..., Settings],
    ledger_path: Path,
    mode: str,
    params: dict[str, Any],
    action: str,
    sent: dict[str, Any],
    problem: str,
) -> None:
    async with connect(make_settings(), mode) as client:
        with pytest.raises(MCPError) as rejected:
            await client.session.send_request(_UncheckedCall(method="tools/call", params=params), CallToolResult)
        await call(client, "list_docs")  # and the server keeps serving
    assert rejected.value.error.code == -32602
    assert rows(ledger_path, "call_intents")[0]["action"] == "list_docs"  # no intent for the rejected call
    refusal, served = rows(ledger_path)
    assert (refusal["action"], refusal["refused"], refusal["error_type"]) == (action, 1, "INVALID_INPUT")
    assert json.loads(refusal["arguments"]) == sent and refusal["notes"] == "tools/call"
    assert problem in refusal["error_message"] and refusal["intent_id"] is None
    assert refusal["client_request_id"] is not None and served["action"] == "list_docs"
