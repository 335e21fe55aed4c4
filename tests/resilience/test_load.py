"""Load: eight server processes on one ledger file, each driven by its own official client, 1,000 calls each."""

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from ledger import verify
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.plans import A_PLAN
from tests.resilience.fleet import audit_ledger, llm_env, official_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.subprocess]

SERVERS = 8
CALLS_PER_SERVER = 1000
_ANALYSIS = {"analysis": "pve02 can be drained: its VMs fit on pve01.", "confidence": 0.9, "assumptions": []}

# One cycle of 50 calls per server. The LLM call (generate_plan on even servers, analyze on odd ones) is a small
# share so the run stays fast; the rest take the one-trip path (read_docs, read_inventory: intent, read and outcome
# in one worker thread), the stepped path (list_docs: the intent written by its first blocking step) and the
# refusals (recorded with no intent).


@dataclass(frozen=True)
class _Call:
    tool: str
    args: dict[str, Any]
    refusal: str | None = None
    """The error type of a call the gate refuses (recorded with no intent); None for a call that succeeds."""


_READS = [
    _Call("read_docs", {"name": "backup-restore"}),
    _Call("list_docs", {}),
    _Call("read_inventory", {}),
    _Call("read_docs", {"name": "vm-provisioning"}),
    _Call("list_docs", {}),
    _Call("read_inventory", {"name": "edge-sites"}),
]
_REFUSALS = [
    _Call("execute_shell", {"command": "rm -rf /"}, "FORBIDDEN_ACTION"),
    _Call("read_docs", {"name": "../inventory/proxmox"}, "INVALID_NAME"),
]
_LLM_CALLS = [
    _Call("generate_plan", {"description": "Add a VM to the prod pool"}),
    _Call("analyze", {"description": "Can pve02 be drained for maintenance?"}),
]
_CYCLE = 50


def _calls(server: int) -> list[_Call]:
    """The server's 1,000 calls: per cycle of 50, one LLM call, two refusals and 47 reads."""
    cycle = [_LLM_CALLS[server % 2], *_REFUSALS]
    cycle += [_READS[(server + n) % len(_READS)] for n in range(_CYCLE - len(cycle))]
    return [cycle[n % _CYCLE] for n in range(CALLS_PER_SERVER)]


Answer = tuple[_Call, bool, dict[str, Any] | None]
"""A call, and the isError flag and structured content its client received."""


async def _run_server(server: int, ledger_path: Path, tmp_path: Path, llm: FakeOpenAI, answers: list[Answer]) -> None:
    mode = ("auto", "legacy")[server // 2 % 2]  # both protocol eras
    with (tmp_path / f"server-{server}.log").open("w") as errlog:
        async with official_client(ledger_path, errlog, mode=mode, **llm_env(llm.base_url)) as client:
            for call in _calls(server):
                result = await client.call_tool(call.tool, call.args)
                answers.append((call, result.is_error, result.structured_content))


async def test_eight_servers_on_one_ledger_answer_and_record_every_call_exactly_once(
    ledger_path: Path, tmp_path: Path
) -> None:
    answers: list[list[Answer]] = [[] for _ in range(SERVERS)]
    started = time.monotonic()
    with (
        FakeOpenAI(default=Reply.text(json.dumps(A_PLAN))) as planner,
        FakeOpenAI(default=Reply.text(json.dumps(_ANALYSIS))) as analyst,
        anyio.fail_after(240),
    ):
        async with anyio.create_task_group() as group:
            for n in range(SERVERS):
                group.start_soon(_run_server, n, ledger_path, tmp_path, (planner, analyst)[n % 2], answers[n])
    wall = time.monotonic() - started

    total = SERVERS * CALLS_PER_SERVER
    assert [len(a) for a in answers] == [CALLS_PER_SERVER] * SERVERS
    flat = [answer for per_server in answers for answer in per_server]
    outputs: dict[str, tuple[_Call, dict[str, Any]]] = {}
    for call, is_error, content in flat:
        assert content is not None, f"{call.tool} was answered without structured content"
        error_type = (content.get("error") or {}).get("type")
        expected = ("ERROR", call.refusal, True) if call.refusal else ("EXECUTE", None, False)
        assert (content["decision"], error_type, is_error) == expected, (call, content.get("error"))
        outputs[content["request_id"]] = (call, content)
    assert len(outputs) == total, "two calls were given the same request id"
    llm_calls = len(planner.chat_requests) + len(analyst.chat_requests)
    assert llm_calls == total // _CYCLE

    refused = {rid: call.refusal is not None for rid, (call, _) in outputs.items()}
    refusals = sum(refused.values())
    audit = audit_ledger(ledger_path, refused)
    assert len(audit.outcomes) == total and len(audit.intents) == total - refusals and not audit.incomplete
    for rid, (call, content) in outputs.items():
        outcome = audit.outcomes[rid]
        assert (outcome["action"], outcome["decision"]) == (call.tool, content["decision"]), rid
        assert outcome["intent_id"] == content["provenance"]["ledger_intent_id"], rid

    report = verify(ledger_path)
    assert report.status == "ok" and report.findings == [], [str(f) for f in report.findings[:10]]
    assert report.rows == audit.chained_rows
    [metrics] = audit.metrics
    assert (metrics["total_runs"], metrics["refused_runs"]) == (total, refusals)
    print(f"load: {SERVERS} servers x {CALLS_PER_SERVER} calls = {total} calls ({llm_calls} LLM, {refusals} refused) "
          f"on one ledger in {wall:.1f}s; {audit.chained_rows} chained rows")  # fmt: skip
