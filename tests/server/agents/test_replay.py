"""`planner-mcp ledger replay`: a ledger recorded by three agents' real calls through their gates, judged again under a
stricter and a looser candidate agents file, with the exact changes each would make, and nothing written."""

import json
import os
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from contracts import default_agent
from ledger import Intent, Ledger, Outcome, utc_now, verify
from ledger.chain import TABLES
from ledger.history import recorded_calls
from ledger.reader import read_only
from ledger.records import CallRecord
from ledger.storage import describe
from server.app import open_runtime
from server.app.resources import route
from server.app.views import AgentView
from server.call.callers import Identity
from server.config.settings import LLMConfig, Settings
from server.governance.roster import Roster, load_agents_file
from tests.conftest import API_KEY, DEFAULT_TOOLS, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.plans import A_PLAN
from tests.processes import on_a_terminal, run_cli
from tests.server.agents.conftest import agent, agents_file, digest

pytestmark = pytest.mark.subprocess

ISSUER = "https://idp.example.test"
TOKEN_1 = "ci-reader-token-" + "1" * 32
TOKEN_2 = "ops-token-" + "2" * 32
TOKEN_3 = "docs-token-" + "3" * 32
MODEL = "test-model"

T1 = Identity(token_digest=digest(TOKEN_1))
T2 = Identity(token_digest=digest(TOKEN_2))
T3 = Identity(token_digest=digest(TOKEN_3))
BY_T1 = {"token_sha256": digest(TOKEN_1)}
BY_T2 = {"token_sha256": digest(TOKEN_2)}
ALICE = Identity(client_id="assistant", subject="alice", issuer=ISSUER)
BOB = Identity(client_id="assistant", subject="bob", issuer=ISSUER, groups=("planners",))
OPS = Identity(client_id="ops-bot", subject="svc-ops", issuer=ISSUER)
# Thirteen groups: a row lists twelve, and `planners`, the one that makes her a planner, sorts last.
CAROL = Identity(
    client_id="assistant", subject="carol", issuer=ISSUER, groups=(*(f"g{i:02}" for i in range(12)), "planners")
)

_READS = ["read_docs", "read_inventory"]
_PLANS = [*_READS, "generate_plan", "llm_inference"]
_OPERATES = [*_READS, "read_logs", "llm_inference"]
ALICE_RULE = {"issuer": ISSUER, "subject": "alice"}
PLANNERS_RULE = {"issuer": ISSUER, "group": "planners"}
OPS_RULE = {"issuer": ISSUER, "client_id": "ops-bot"}
DOCS_ONLY = agent("docs-only", 0, ["read_docs"], {"token_sha256": digest(TOKEN_3)})

CURRENT = [
    agent("ci-reader", 0, _READS, BY_T1),
    agent("planner", 1, _PLANS, ALICE_RULE, PLANNERS_RULE, models_by_tier={1: [MODEL]}, daily_token_budget=40),
    agent("operator", 2, _OPERATES, OPS_RULE, BY_T2, models_by_tier={2: ["big-model"]}),
    DOCS_ONLY,
]

STRICTER = [
    agent("ci-reader", 0, ["read_docs"], BY_T1, BY_T2),
    agent("planner", 1, _PLANS, ALICE_RULE, models_by_tier={1: [MODEL]}, daily_token_budget=18),
    agent("juniors", 1, _PLANS, PLANNERS_RULE, models_by_tier={1: ["other-model"]}),
    agent("operator", 2, [*_READS, "llm_inference"], OPS_RULE, models_by_tier={2: ["big-model"]}),
    DOCS_ONLY,
]

LOOSER = [
    agent("ci-reader", 0, _PLANS, BY_T1),
    agent("planner", 1, _PLANS, ALICE_RULE, PLANNERS_RULE, models_by_tier={1: [MODEL]}, daily_token_budget=100),
    agent("reviewers", 1, ["read_docs"], {"issuer": ISSUER, "subject": "carol"}),
    agent("operator", 2, _OPERATES, OPS_RULE, BY_T2, models_by_tier={2: ["big-model", MODEL]}),
    {**DOCS_ONLY, "allowed_side_effects": _READS},
]

PLAN_ARGS = {"description": "Add a VM to the prod pool"}

# label, caller (None: stdio), method and target as the server records them, name, arguments, the error recorded
CALLS: list[tuple[str, Identity | None, str, str, dict[str, Any], str | None]] = [
    ("t1-docs", T1, "", "read_docs", {"name": "backup-restore"}, None),
    ("t1-plan", T1, "", "generate_plan", PLAN_ARGS, "FORBIDDEN_ACTION"),
    ("alice-1", ALICE, "", "generate_plan", PLAN_ARGS, None),
    ("alice-2", ALICE, "", "generate_plan", PLAN_ARGS, None),
    ("bob", BOB, "", "generate_plan", PLAN_ARGS, None),
    ("alice-3", ALICE, "", "generate_plan", PLAN_ARGS, "TOKEN_BUDGET_EXHAUSTED"),
    ("ops-analyze", OPS, "", "analyze", PLAN_ARGS, "MODEL_NOT_ALLOWED"),
    ("ops-logs", OPS, "", "read_logs", {}, None),
    ("t2-inventory", T2, "", "read_inventory", {"name": "proxmox"}, None),
    ("carol", CAROL, "", "read_docs", {"name": "backup-restore"}, None),
    ("stdio-list", None, "", "list_docs", {}, None),
    ("t1-resource", T1, "resources/read", "inventory://proxmox", {}, None),
    ("t1-prompt", T1, "prompts/get", "plan_request", PLAN_ARGS, "FORBIDDEN_ACTION"),
    ("t1-escape", T1, "", "read_docs", {"name": "../secrets"}, "INVALID_NAME"),
    # Refused, so recorded under the URI it asked for: no agent of docs-only's has inventory://.
    ("t3-resource", T3, "resources/read", "inventory://proxmox", {}, "FORBIDDEN_ACTION"),
]
"""Calls 3 to 5 spend 18 tokens each (the peer's usage), so the planner's budget of 40 refuses the sixth."""


def _notes(who: Identity | None, method: str, target: str) -> str:
    """What the server records of how a call arrived: the method and its target, the token's claims, the caller."""
    parts = [f"{method} {target}" if method else "", *((who.claims(), who.record()) if who else ())]
    return "; ".join(part for part in parts if part)


@dataclass(frozen=True)
class Recorded:
    ledger: Path | str
    """A SQLite file, or a PostgreSQL URL."""
    folder: Path
    current: Path
    ids: dict[str, str]
    """Request id by label."""

    def label(self, request_id: str) -> str:
        return next(label for label, found in self.ids.items() if found == request_id)


async def _record(settings: Settings, roster: Roster) -> dict[str, str]:
    """Each call of CALLS through the gate of the agent its caller acts as, in process, as HTTP would record it."""
    ids = {}
    views = {agent_id: AgentView.of(agent) for agent_id, agent in roster.agents.items()}
    async with open_runtime(settings, list(views.values()), default="ci-reader") as runtime:
        for label, who, method, name, arguments, error in CALLS:
            judged = roster.judge(who).agent if who is not None else roster.agents["ci-reader"]
            assert judged is not None
            view, catalogue, key, args = views[judged.agent_id], None, name, arguments
            if method == "resources/read":
                catalogue = view.resources
                key, args = route(name, catalogue)
            elif method == "prompts/get":
                catalogue = view.prompts
            output = await runtime.gates[judged.agent_id].call(
                key, args, catalogue=catalogue, via=_notes(who, method, name)
            )
            assert (output.error.type if output.error else None) == error, (label, output.error)
            ids[label] = output.request_id
    return ids


def record(ledger: Path | str, folder: Path) -> Recorded:
    """CALLS recorded into `ledger` by a server whose agents file is CURRENT, its LLM a peer on loopback."""
    current = agents_file(folder / "agents.toml", CURRENT)
    with FakeOpenAI(default=Reply.text(json.dumps(A_PLAN))) as llm:
        llm_config = LLMConfig(api_key=API_KEY, base_url=llm.base_url, model=MODEL, timeout_s=5, max_retries=0)
        settings = Settings(ledger_path=ledger, agents_path=current, llm=llm_config)
        file = load_agents_file(current)
        ids = anyio.run(_record, settings, Roster(file.agents, issuers=file.issuers, source=current))
    return Recorded(ledger, folder, current, ids)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    folder = tmp_path_factory.mktemp("replay")
    return record(folder / "ledger.db", folder)


def _replay(recorded: Recorded, candidate: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`planner-mcp ledger replay` as an operator runs it, on the server's own configuration."""
    env = {"PLANNER_MCP_AGENTS": str(recorded.current), "PLANNER_MCP_MODEL": MODEL}
    return run_cli(recorded.folder / "ledger.db", "ledger", "replay", "--agents", str(candidate), *args,
                   PLANNER_MCP_LEDGER=str(recorded.ledger), **env)  # fmt: skip


def _report(recorded: Recorded, agents: list[dict[str, Any]], *args: str) -> tuple[int, dict[str, Any]]:
    candidate = agents_file(recorded.folder / f"candidate-{digest(repr(agents))[:8]}.toml", agents)
    proc = _replay(recorded, candidate, "--json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, report


def _changes(recorded: Recorded, report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (c["kind"], recorded.label(c["request_id"]), c["before"], c["after"], c["agent_before"], c["agent_after"],
         c["rule"])
        for c in report["changes"]
    ]  # fmt: skip


def _counts(*values: int) -> dict[str, int]:
    names = ("calls", "allowed_to_refused", "refused_to_allowed", "budget_refusals", "callers_moved", "unjudged")
    return dict(zip(names, values, strict=True))


STRICTER_CHANGES = [
    ("refused", "alice-2", "allowed", "refused", "planner", "planner", "budget"),
    ("refused", "bob", "allowed", "refused", "planner", "juniors", "model"),
    ("refused", "ops-logs", "allowed", "refused", "operator", "operator", "tools"),
    ("refused", "t2-inventory", "allowed", "refused", "operator", "ci-reader", "tools"),
    ("unjudged", "carol", "allowed", "cannot be judged", "planner", None, "caller"),
    ("refused", "t1-resource", "allowed", "refused", "ci-reader", "ci-reader", "tools"),
]


def test_a_stricter_candidate_names_each_call_it_would_refuse_and_why(recorded: Recorded) -> None:
    code, report = _report(recorded, STRICTER)
    assert code == 1 and report["changed"] is True
    assert report["calls"] == len(CALLS) and report["since"] is None
    assert _changes(recorded, report) == STRICTER_CHANGES
    reasons = {recorded.label(c["request_id"]): c["reason"] for c in report["changes"]}
    assert reasons["alice-2"] == (
        f"agent planner would have spent 18 of its 18 LLM tokens for {_day(recorded)} (UTC) (it ran out at request "
        f"{recorded.ids['alice-1']})"
    )
    assert (
        reasons["bob"]
        == "the model 'test-model' that answered is not allowed for tier 1 by agent juniors (allowed: other-model)"
    )
    assert reasons["ops-logs"] == "read_logs is not a tool of agent operator (tier 2)"
    assert reasons["t2-inventory"] == "read_inventory is not a tool of agent ci-reader (tier 0)"
    assert reasons["t1-resource"] == "read_inventory is not a resource of agent ci-reader (tier 0)"
    assert "keeps only part of the caller" in reasons["carol"] and "sub=carol" in reasons["carol"]
    callers = {recorded.label(c["request_id"]): c["caller"] for c in report["changes"]}
    assert callers["t2-inventory"] == T2.describe() and callers["bob"] == BOB.describe()
    assert report["agents"] == {
        "ci-reader": _counts(6, 1, 0, 0, 0, 0),
        "planner": _counts(5, 2, 0, 1, 1, 1),
        "operator": _counts(3, 2, 0, 0, 1, 0),
        "docs-only": _counts(1, 0, 0, 0, 0, 0),
    }


def test_a_stricter_candidate_names_the_tools_each_caller_would_lose(recorded: Recorded) -> None:
    _, report = _report(recorded, STRICTER)
    lists = [
        (e["caller"], e["agent_before"], e["agent_after"], e["vanish"], e["appear"], e["called"], e["as_recorded"])
        for e in report["tool_lists"]
    ]
    assert lists == [
        (T1.describe(), "ci-reader", "ci-reader", ["read_inventory"], [], ["read_inventory"], True),
        (OPS.describe(), "operator", "operator", ["read_logs"], [], ["read_logs"], True),
        (T2.describe(), "operator", "ci-reader", ["read_inventory", "analyze", "read_logs"], [], ["read_inventory"],
         True),
        ("-", "ci-reader", "ci-reader", ["read_inventory"], [], [], True),
    ]  # fmt: skip
    assert report["tool_lists"][2]["before"] == ["read_docs", "list_docs", "read_inventory", "analyze", "read_logs"]
    assert report["tool_lists"][2]["after"] == ["read_docs", "list_docs"]
    assert any("cannot be judged" in note for note in report["notes"])
    assert any("Reservations and concurrency are not replayed" in note for note in report["notes"])


def test_a_list_before_that_is_not_the_one_recorded_is_named_as_such(recorded: Recorded) -> None:
    # The server's configuration has moved on to the looser file since the calls were made: the lists it gives stand
    # for those the calls were made under, and where their digest is not the recorded one, the report says so.
    moved_on = replace(recorded, current=agents_file(recorded.folder / "moved-on.toml", LOOSER))
    _, report = _report(moved_on, STRICTER)
    entries = {e["caller"]: e for e in report["tool_lists"]}
    ci = entries[T1.describe()]
    assert ci["as_recorded"] is False and ci["before"] == ["read_docs", "list_docs", "read_inventory", "generate_plan",
                                                          "analyze"]  # fmt: skip
    assert ci["vanish"] == ["read_inventory", "generate_plan", "analyze"]
    assert (ci["called"], ci["tried"]) == (["read_inventory"], ["generate_plan"])
    assert entries[OPS.describe()]["as_recorded"] is True  # the operator's tools are the same in both files
    assert any("not the one their calls were recorded under" in note for note in report["notes"])


def test_a_looser_candidate_names_each_refusal_it_would_allow(recorded: Recorded) -> None:
    code, report = _report(recorded, LOOSER)
    assert code == 1
    assert _changes(recorded, report) == [
        ("allowed", "t1-plan", "refused", "allowed", "ci-reader", "ci-reader", "tools"),
        ("allowed", "alice-3", "refused", "allowed", "planner", "planner", "budget"),
        ("allowed", "ops-analyze", "refused", "allowed", "operator", "operator", "model"),
        ("moved", "carol", "allowed", "allowed", "planner", "reviewers", None),
        ("allowed", "t1-prompt", "refused", "allowed", "ci-reader", "ci-reader", "tools"),
        ("allowed", "t3-resource", "refused", "allowed", "docs-only", "docs-only", "tools"),
    ]
    reasons = {recorded.label(c["request_id"]): c["reason"] for c in report["changes"]}
    assert reasons["alice-3"] == (
        "recorded as TOKEN_BUDGET_EXHAUSTED; agent planner (tier 1) of the candidate allows it"
    )
    assert reasons["carol"] == "acts as reviewers (tier 1) instead of planner (tier 1)"
    assert reasons["ops-analyze"] == (
        "recorded as MODEL_NOT_ALLOWED; agent operator (tier 2) of the candidate allows it"
    )
    assert report["agents"] == {
        "ci-reader": _counts(6, 0, 2, 0, 0, 0),
        "planner": _counts(5, 0, 1, 0, 1, 0),
        "operator": _counts(3, 0, 1, 0, 0, 0),
        "docs-only": _counts(1, 0, 1, 0, 0, 0),
    }
    lists = [(e["caller"], e["vanish"], e["appear"], e["called"], e["tried"]) for e in report["tool_lists"]]
    assert lists == [
        # T1 was refused generate_plan: the looser file gives it, and says T1 asked for it.
        (T1.describe(), [], ["generate_plan", "analyze"], [], ["generate_plan"]),
        (CAROL.describe(), ["read_inventory", "generate_plan", "analyze"], [], [], []),
        ("-", [], ["generate_plan", "analyze"], [], []),
        (T3.describe(), [], ["read_inventory"], [], []),
    ]


def test_since_cuts_the_range_but_the_days_earlier_calls_still_count_against_its_budget(recorded: Recorded) -> None:
    since = next(r["timestamp"] for r in rows(recorded.ledger) if r["request_id"] == recorded.ids["alice-2"])
    code, report = _report(recorded, STRICTER, "--since", since)
    in_range = [r for r in rows(recorded.ledger) if r["timestamp"] >= since]
    assert code == 1 and report["since"] == since and report["calls"] == len(in_range)
    # alice-1 is before the range: not reported, but the budget it spent is why alice-2 would be refused.
    assert _changes(recorded, report) == STRICTER_CHANGES
    assert recorded.ids["alice-1"] in report["changes"][0]["reason"]
    assert report["agents"]["ci-reader"]["calls"] == 4
    assert any("counts that day's calls before" in note for note in report["notes"])


def test_nothing_to_change_exits_0_and_says_so(recorded: Recorded) -> None:
    since = next(r["timestamp"] for r in rows(recorded.ledger) if r["request_id"] == recorded.ids["stdio-list"])
    proc = _replay(recorded, recorded.current, "--since", since)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].endswith(": nothing would change")
    assert "changes:" not in proc.stdout and "tool lists:" not in proc.stdout


def test_the_text_report_names_each_change_and_never_an_argument(recorded: Recorded) -> None:
    candidate = agents_file(recorded.folder / "stricter-text.toml", STRICTER)
    proc = _replay(recorded, candidate)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"replayed {len(CALLS)} calls (all recorded) of {recorded.ledger} under {candidate}: ")
    assert lines[0].endswith(f": {len(STRICTER_CHANGES)} calls would change; 4 callers' tool lists would change")
    assert lines[2].split() == ["ci-reader", "6", "1", "0", "0", "0", "0"]
    assert lines[3].split() == ["planner", "5", "2", "0", "1", "1", "1"]
    t2 = next(line for line in lines if recorded.ids["t2-inventory"] in line)
    assert t2.endswith(
        f"{T2.describe()} read_inventory: allowed as operator (tier 2) → refused as ci-reader (tier 0): "
        "read_inventory is not a tool of agent ci-reader (tier 0)"
    )
    assert f"  {T2.describe()} [operator → ci-reader]: loses read_inventory (called), analyze, read_logs" in lines
    for _, _, _, _, arguments, _ in CALLS:
        for value in arguments.values():
            assert value not in proc.stdout
    assert TOKEN_1 not in proc.stdout and TOKEN_2 not in proc.stdout


def test_a_caller_recorded_in_part_is_judged_when_a_whole_value_of_it_matches(recorded: Recorded) -> None:
    # The looser file names carol by her subject, which her rows keep whole: she is judged (and moves), though the
    # group that made her a planner is among those her rows leave out.
    _, report = _report(recorded, LOOSER)
    assert [c["kind"] for c in report["changes"] if c["request_id"] == recorded.ids["carol"]] == ["moved"]
    assert not any("cannot be judged" in note for note in report["notes"])


def test_an_untrusted_candidate_or_an_unreadable_ledger_exits_2(recorded: Recorded, tmp_path: Path) -> None:
    candidate = agents_file(tmp_path / "open.toml", LOOSER)
    os.chmod(candidate, 0o666)
    proc = _replay(recorded, candidate)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"--agents: {candidate} is refused" in proc.stderr
    os.chmod(candidate, 0o600)
    gone = run_cli(tmp_path / "none.db", "ledger", "replay", "--agents", str(candidate))
    assert gone.returncode == 2 and "the ledger cannot be read" in gone.stderr
    bad = _replay(recorded, candidate, "--since", "last tuesday")
    assert bad.returncode == 2 and "not an ISO date" in bad.stderr


def test_replay_writes_nothing_and_the_ledger_still_verifies(recorded: Recorded) -> None:
    before = {table: len(rows(recorded.ledger, table)) for table in TABLES}
    head = verify(recorded.ledger).head_hash
    _report(recorded, STRICTER)
    _report(recorded, LOOSER)
    assert {table: len(rows(recorded.ledger, table)) for table in TABLES} == before
    report = verify(recorded.ledger)
    assert (report.status, report.head_hash) == ("ok", head)
    assert run_cli(recorded.folder / "ledger.db", "ledger", "verify").returncode == 0


def test_the_recorded_calls_are_read_in_pages_in_chain_order(recorded: Recorded) -> None:
    with read_only(recorded.ledger) as conn:
        whole = list(recorded_calls(conn))
        paged = list(recorded_calls(conn, page=3))
    assert paged == whole and [call.request_id for call in whole] == list(recorded.ids.values())
    assert [call.seq for call in whole] == sorted(call.seq for call in whole)


def test_a_postgresql_ledger_is_replayed_as_a_sqlite_one_is(pg_ledger: str, tmp_path: Path) -> None:
    recorded = record(pg_ledger, tmp_path)
    code, report = _report(recorded, STRICTER)
    assert code == 1 and report["calls"] == len(CALLS)
    assert _changes(recorded, report) == STRICTER_CHANGES
    assert report["agents"]["planner"] == _counts(5, 2, 0, 1, 1, 1)
    password = urlsplit(pg_ledger).password
    assert password and password not in json.dumps(report) and report["ledger"] == describe(pg_ledger)


def test_progress_goes_to_stderr_only_when_it_is_a_terminal(recorded: Recorded) -> None:
    candidate = agents_file(recorded.folder / "progress.toml", STRICTER)
    assert _replay(recorded, candidate).stderr == ""
    proc, shown = on_a_terminal(recorded.folder / "ledger.db", "ledger", "replay", "--agents", str(candidate),
                                PLANNER_MCP_AGENTS=str(recorded.current))  # fmt: skip
    assert proc.returncode == 1 and proc.stdout.startswith(f"replayed {len(CALLS)} calls")
    assert shown == f"\rplanner-mcp: replayed {len(CALLS)} calls\r\n"


def test_a_budget_refusal_after_the_intent_is_a_refusal_a_candidate_may_lift(tmp_path: Path) -> None:
    # Under concurrency the budget can refuse a call at its prompt's reservation, once its intent is in: its outcome
    # is an error, not a refusal, yet the budget decided it. Written here as the gate writes such a call.
    ledger = Ledger(tmp_path / "ledger.db")
    call = CallRecord(
        request_id="late", timestamp=utc_now(), agent_id="planner", agent_version="1.0.0", tier=1,
        action="generate_plan", arguments=PLAN_ARGS, tools_digest="sha256:0", notes=ALICE.record(),
    )  # fmt: skip
    try:
        intent = ledger.record_intent(Intent(**vars(call)))
        ledger.record_outcome(
            Outcome(**vars(call), decision="ERROR", confidence=0.0, success=False, intent_id=intent.id,
                    error_type="TOKEN_BUDGET_EXHAUSTED", error_message="Agent planner has spent 40 of its 40 tokens")
        )  # fmt: skip
    finally:
        ledger.close()
    recorded = Recorded(
        tmp_path / "ledger.db", tmp_path, agents_file(tmp_path / "agents.toml", CURRENT), {"late": "late"}
    )
    code, report = _report(recorded, LOOSER)
    assert code == 1
    assert _changes(recorded, report) == [("allowed", "late", "refused", "allowed", "planner", "planner", "budget")]


async def _one_agent_calls(settings: Settings) -> list[str]:
    """A call over stdio and one from an OAuth caller, to a server of one policy file (the seed's agent)."""
    async with open_runtime(settings, [AgentView.of(default_agent())]) as runtime:
        stdio = await runtime.gate.call("list_docs", {})
        oauth = await runtime.gate.call("list_docs", {}, via=Identity(client_id="ide", subject="dana").record())
    return [stdio.request_id, oauth.request_id]


def test_calls_of_a_server_without_an_agents_file_are_refused_or_cannot_be_judged(tmp_path: Path) -> None:
    ids = anyio.run(_one_agent_calls, Settings(ledger_path=tmp_path / "ledger.db"))
    recorded = Recorded(
        tmp_path / "ledger.db", tmp_path, tmp_path / "none.toml", dict(zip(["stdio", "dana"], ids, strict=True))
    )
    candidate = agents_file(tmp_path / "candidate.toml", LOOSER)
    proc = run_cli(tmp_path / "ledger.db", "ledger", "replay", "--agents", str(candidate), "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == {"ledger", "changed", "candidate", "calls", "since", "agents", "changes", "tool_lists",
                           "notes"}  # fmt: skip
    assert _changes(recorded, report) == [
        ("refused", "stdio", "allowed", "refused", "llm-planner-001", None, "caller"),
        ("unjudged", "dana", "allowed", "cannot be judged", "llm-planner-001", None, "caller"),
    ]
    reasons = [change["reason"] for change in report["changes"]]
    assert reasons[0] == (
        "the candidate has no agent 'llm-planner-001', which calls that name no caller (stdio, in process) ran as"
    )
    assert "was recorded without its issuer" in reasons[1]
    # The seed's agent is the configuration's own (no agents file): its list before is known, and all of it goes.
    assert [(e["caller"], e["before"], e["after"], e["vanish"], e["called"]) for e in report["tool_lists"]] == [
        ("-", DEFAULT_TOOLS, [], DEFAULT_TOOLS, ["list_docs"])
    ]
    # A configuration that no longer has the agent: what it had is not known, only that what it called would go.
    proc = run_cli(tmp_path / "ledger.db", "ledger", "replay", "--agents", str(candidate), "--json",
                   PLANNER_MCP_AGENTS=str(candidate))  # fmt: skip
    report = json.loads(proc.stdout)
    assert [(e["caller"], e["before"], e["after"], e["vanish"], e["called"]) for e in report["tool_lists"]] == [
        ("-", None, [], ["list_docs"], ["list_docs"])
    ]


def _day(recorded: Recorded) -> str:
    return str(rows(recorded.ledger)[0]["timestamp"])[:10]


def test_a_static_tokens_caller_is_recorded_whole_past_the_scrubber(recorded: Recorded) -> None:
    # `caller: token=<digest>` reads as a secret to the scrubber every row's notes pass, and landed as [REDACTED]:
    # every static token's caller was then the same one, and none could be judged again.
    notes = {row["request_id"]: row["notes"] for row in rows(recorded.ledger)}
    assert notes[recorded.ids["t1-docs"]] == T1.record() == f"caller: static=sha256:{digest(TOKEN_1)[:16]}"
    assert notes[recorded.ids["t2-inventory"]] == T2.record()
    assert notes[recorded.ids["t1-resource"]] == f"resources/read inventory://proxmox; {T1.record()}"
