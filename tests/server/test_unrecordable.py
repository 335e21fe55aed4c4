"""One bad value never wedges the ledger: a result that cannot be recorded as it is still ends its call with a
recorded outcome, the client gets an AgentOutput, and the ledger stays writable by every process.

The shipped tools no longer produce such a value (the LLM client checks what the endpoint sends); tools of the
test's own produce them here, as a tool of tomorrow might.
"""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from contracts import Decision, TokenUsage
from ledger import verify
from server.app import open_runtime
from server.app.views import AgentView
from server.config.settings import Settings
from server.governance.policy import load_policy
from server.governance.spec import LOCAL_READ, Args, Deps, LLMCall, ToolResult, ToolSpec
from server.llm import LLMReply
from server.tools import registered_tools
from tests.conftest import rows

pytestmark = pytest.mark.anyio

_TAKE_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0.5, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("ROLLBACK")
"""


async def _too_large_to_store(args: Args, deps: Deps) -> ToolResult:
    reply = LLMReply(content="{}", model="m", usage=TokenUsage(prompt_tokens=2**63, completion_tokens=1))
    call = LLMCall(reply=reply, endpoint_host="llm.example", prompt_digest="sha256:0")
    return ToolResult(decision=Decision.EXECUTE, confidence=1.0, llm=call)


async def _out_of_range(args: Args, deps: Deps) -> ToolResult:
    return ToolResult(decision=Decision.EXECUTE, confidence=2.0)


def _probe(name: str, capability: Callable[..., object]) -> ToolSpec:
    return ToolSpec(name, name, "A tool whose result is hostile.", ("read_docs",), Args, capability, LOCAL_READ)  # type: ignore[arg-type]


@pytest.mark.parametrize("capability", [_too_large_to_store, _out_of_range])
async def test_a_result_that_cannot_be_recorded_becomes_a_recorded_internal_error_and_the_next_call_works(
    make_settings: Callable[..., Settings], ledger_path: Path, capability: Callable[..., object]
) -> None:
    settings = make_settings()
    agent = load_policy(settings.policy_path)
    async with open_runtime(
        settings, [AgentView(agent, {**registered_tools(agent), "probe": _probe("probe", capability)})]
    ) as rt:
        output = await rt.gate.call("probe", {})
        other = subprocess.run(
            [sys.executable, "-c", _TAKE_WRITE_LOCK, str(ledger_path)], capture_output=True, text=True, timeout=60
        )
        after = await rt.gate.call("list_docs", {})
    assert output.decision is Decision.ERROR and output.error is not None
    assert output.error.type == "INTERNAL_ERROR" and output.provenance is not None
    assert output.provenance.usage is None and output.provenance.ledger_intent_id is not None
    assert other.returncode == 0, other.stderr  # no write lock outlived the call
    assert after.decision is Decision.EXECUTE
    intents, outcomes = rows(ledger_path, "call_intents"), rows(ledger_path)
    assert [(o["action"], o["error_type"], o["prompt_tokens"]) for o in outcomes] == [
        ("probe", "INTERNAL_ERROR", None),
        ("list_docs", None, None),
    ]
    assert [o["intent_id"] for o in outcomes] == [i["id"] for i in intents]
    assert verify(ledger_path).status == "ok"


async def test_a_lone_surrogate_from_the_caller_is_refused_and_recorded_like_any_bad_input(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    # JSON may carry "\\ud800" and the stdlib reader (the modern HTTP transport's) decodes it; UTF-8 cannot hold it.
    settings = make_settings()
    agent = load_policy(settings.policy_path)
    async with open_runtime(settings, [AgentView(agent, registered_tools(agent))]) as runtime:
        extra = await runtime.gate.call("read_docs", {"name": "backup-restore", "why\ud800": "x\udc80"})
        unknown = await runtime.gate.call("tool\ud800", {})
        after = await runtime.gate.call("list_docs", {})
    assert extra.error is not None and extra.error.type == "INVALID_INPUT"
    assert "\\udc80" in extra.error.triggering_input and "x\udc80" not in extra.sealed_json()
    assert unknown.error is not None and unknown.error.type == "FORBIDDEN_ACTION"
    assert unknown.action == "tool\\ud800" and after.decision is Decision.EXECUTE
    assert [(r["action"], r["error_type"]) for r in rows(ledger_path)] == [
        ("read_docs", "INVALID_INPUT"),
        ("tool\\ud800", "FORBIDDEN_ACTION"),
        ("list_docs", None),
    ]
    assert verify(ledger_path).status == "ok"
