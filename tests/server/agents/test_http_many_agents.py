"""Many sessions of three agents at once on one HTTP server, with sessions and stateless: each session is shown
exactly its agent's tools, resources, prompt and policy; every result and ledger row names its caller's agent, tier
and caller; `read_logs` shows each caller its own calls only; the planner's budget running out refuses its LLM calls
and no one else's; the metrics count each agent's calls; and the ledger verifies afterwards. Real server processes,
the loopback OAuth issuer and LLM endpoint."""

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import API_KEY, rows
from tests.http_server import free_port, serving
from tests.peers.jwks_server import Issuer
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import run_cli
from tests.server.agents.fleet import AGENTS, BUDGET, LLM_REPLY, Caller, Seen, callers, fleet_file, session

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

SESSIONS_PER_CALLER = 3
_BUDGET_OUT = "TOKEN_BUDGET_EXHAUSTED"
_REFUSALS = {"FORBIDDEN_ACTION", _BUDGET_OUT}


async def _at_once(url: str, everyone: list[Caller]) -> list[Seen]:
    """Every caller's sessions at the same time, on one server."""
    seen: list[Seen] = []

    async def one(caller: Caller) -> None:
        seen.append(await session(url, caller))

    with anyio.fail_after(300):
        async with anyio.create_task_group() as tasks:
            for caller in everyone:
                for _ in range(SESSIONS_PER_CALLER):
                    tasks.start_soon(one, caller)
    return seen


async def _afterwards(url: str, everyone: list[Caller]) -> list[Seen]:
    """Once they are done: a last session of each caller, in turn, whose log must hold all its calls."""
    return [await session(url, caller) for caller in everyone]


def _shown_leaks(seen: Seen) -> list[str]:
    """What a session was shown that its agent's callers should not be (or not shown that they should)."""
    expected = AGENTS[seen.caller.agent]
    leaks = []
    shown = (seen.tools, seen.resources, seen.templates, seen.prompts)
    if shown != (expected.tools, expected.resources, expected.templates, expected.prompts):
        leaks.append(f"{seen.caller.name} was shown {shown}")
    policy = seen.policy
    said = (policy["agent_id"], policy["tier"], policy["registered_tools"], policy["models_allowed"],
            policy["daily_token_budget"])  # fmt: skip
    if said != (seen.caller.agent, expected.tier, expected.tools, expected.models, expected.budget):
        leaks.append(f"{seen.caller.name} read the policy {said}")
    leaks += [
        f"{seen.caller.name} got a result of {o['agent_id']}"
        for o in seen.outputs
        if o["agent_id"] != seen.caller.agent
    ]
    return leaks


def _row_leaks(sessions: list[Seen], recorded: list[dict[str, Any]]) -> list[str]:
    """Rows that name another agent, tier or caller than the caller that made the call, and calls with no row."""
    made_by = {request_id: s.caller for s in sessions for request_id in s.request_ids}
    leaks = [f"{len(made_by)} calls made, {len(recorded)} rows"] if len(made_by) != len(recorded) else []
    for row in recorded:
        caller = made_by.get(row["request_id"])
        if caller is None:
            leaks.append(f"row {row['request_id']} is no session's call")
        elif (row["agent_id"], row["tier"]) != (caller.agent, AGENTS[caller.agent].tier):
            leaks.append(f"{caller.name}'s call {row['request_id']} is recorded as {row['agent_id']}")
        elif not row["notes"].endswith(caller.record):
            leaks.append(f"{caller.name}'s call {row['request_id']} is recorded as made by: {row['notes']}")
    lists: dict[str, set[str]] = {}
    for row in recorded:
        lists.setdefault(row["agent_id"], set()).add(row["tools_digest"])
    if sorted(len(digests) for digests in lists.values()) != [1] * len(AGENTS) or len(set.union(*lists.values())) != 3:
        leaks.append(f"rows name the tool lists {lists}, not one list for each agent")
    return leaks


def _log_leaks(sessions: list[Seen], last: list[Seen]) -> list[str]:
    """read_logs showing a call that is not its caller's, or leaving out one of its caller's calls."""
    made_by = {request_id: s.caller.name for s in [*sessions, *last] for request_id in s.request_ids}
    leaks = []
    for s in [*sessions, *last]:
        leaks += [
            f"{s.caller.name} was shown {made_by.get(r)}'s call" for r in s.logged if made_by.get(r) != s.caller.name
        ]
        if s.logged and not set(s.request_ids[:-1]) <= set(s.logged):
            leaks.append(f"{s.caller.name}'s log leaves out calls of its session")
    for s in last:
        if "read_logs" in s.tools:
            own = {r for other in [*sessions, *last] if other.caller == s.caller for r in other.request_ids}
            if set(s.logged) != own - {s.request_ids[-1]}:  # read_logs shows the calls before it
                leaks.append(f"{s.caller.name}'s whole log is not exactly its calls")
    return leaks


def _calls(sessions: list[Seen]) -> dict[str, int]:
    counted = dict.fromkeys(AGENTS, 0)
    for s in sessions:
        counted[s.caller.agent] += len(s.outputs)
    return counted


def _llm(sessions: list[Seen], agent_id: str) -> tuple[int, int]:
    """An agent's LLM calls that ran, and those its budget refused."""
    outputs = [
        o
        for s in sessions
        if s.caller.agent == agent_id
        for o in s.outputs
        if o.get("action") in ("analyze", "generate_plan")
    ]
    ran = sum(1 for o in outputs if o["decision"] != "ERROR")
    return ran, sum(1 for o in outputs if o["error"] is not None and o["error"]["type"] == _BUDGET_OUT)


def _refused(sessions: list[Seen], agent_id: str) -> int:
    """An agent's calls refused: a tool outside its list, or an LLM call past its budget."""
    kinds = [o["error"]["type"] for s in sessions if s.caller.agent == agent_id for o in s.outputs if o.get("error")]
    return sum(1 for kind in kinds if kind in _REFUSALS)


@pytest.mark.parametrize("stateless", [False, True], ids=["with sessions", "stateless"])
def test_concurrent_sessions_of_three_agents_each_see_and_spend_only_their_own_and_the_ledger_verifies(
    tmp_path: Path, ledger_path: Path, llm: FakeOpenAI, stateless: bool
) -> None:
    llm.default = Reply.text(LLM_REPLY)
    port = free_port()
    with Issuer(audience=f"http://127.0.0.1:{port}/mcp") as issuer:
        everyone = callers(issuer)
        env = {"PLANNER_MCP_AGENTS": str(fleet_file(tmp_path / "agents.toml", issuer)), "OPENAI_API_KEY": API_KEY,
               "OPENAI_BASE_URL": llm.base_url, "PLANNER_MCP_MODEL": "test-model"}  # fmt: skip
        with serving(ledger_path, *(["--stateless"] if stateless else []), port=port, env=env) as served:
            sessions = anyio.run(_at_once, served.url, everyone)
            last = anyio.run(_afterwards, served.url, everyone)
    everything = [*sessions, *last]
    recorded = rows(ledger_path)
    leaks = [
        *(leak for s in everything for leak in _shown_leaks(s)),
        *_row_leaks(everything, recorded),
        *_log_leaks(sessions, last),
    ]
    assert leaks == []
    assert len(sessions) == 21 and _calls(sessions) == {"observer": 24, "analyst": 36, "planner": 63}
    assert len(last) == 7 and _calls(everything) == {"observer": 32, "analyst": 48, "planner": 84}
    # The planner's 18 LLM calls at once run out its budget: each that runs sees the others' reservations and
    # spendings, so at most three of 18 tokens fit under 40; its last sessions, one after another, spend the rest.
    ran, refused = _llm(sessions, "planner")
    assert 1 <= ran <= 3 and refused == 18 - ran
    assert _llm(everything, "planner") == (3, 21) and _llm(everything, "analyst") == (8, 0)
    # What the ledger reports of each agent is what its callers were given.
    stats = {entry["agent_id"]: entry for entry in _cli(ledger_path, "stats")}
    assert {
        a: tuple(s[k] for k in ("current_tier", "total_runs", "llm_calls", "refused_runs")) for a, s in stats.items()
    } == {a: (AGENTS[a].tier, _calls(everything)[a], _llm(everything, a)[0], _refused(everything, a)) for a in AGENTS}
    assert stats["planner"]["prompt_tokens"] + stats["planner"]["completion_tokens"] == 18 * 3 <= BUDGET + 18
    metrics = {row["agent_id"]: row["total_runs"] for row in rows(ledger_path, "agent_metrics", "agent_id")}
    assert metrics == _calls(everything)
    verified = _cli(ledger_path, "verify")
    assert (verified["status"], verified["findings"]) == ("ok", [])


def _cli(ledger_path: Path, command: str) -> Any:
    proc = run_cli(ledger_path, "ledger", command, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)
