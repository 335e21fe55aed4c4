"""A daily token budget holds on a PostgreSQL ledger as on SQLite (tests/ledger/test_budget.py and
tests/server/llm/test_budget.py): reservations are chained rows taken under the chain's advisory lock, so calls
in separate processes cannot spend past the budget together, by more than one call's reservation."""

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

from ledger import BudgetExhausted, Intent, Ledger, Reservation, verify
from tests.conftest import API_KEY, policy_file
from tests.ledger.postgres.conftest import dbname
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.postgres_cluster import PostgresCluster
from tests.processes import WATCHDOG_S, server_command
from tests.server.llm.conftest import plan_reply

AGENT = "llm-planner-001"
_BUDGET = 40
_PROCESSES = 6


def _intent(request_id: str) -> Intent:
    return Intent(
        request_id=request_id, timestamp="2026-12-05T10:00:00.000Z", agent_id=AGENT, agent_version="0.1.0", tier=0,
        action="analyze", arguments={"description": "why?"}, tools_digest="sha256:abc",
    )  # fmt: skip


@pytest.fixture
def two_servers(pg_ledger: str) -> Iterator[tuple[Ledger, Ledger]]:
    """Two writers of one PostgreSQL ledger, each on its own connection, as two hosts' servers are."""
    first, second = Ledger(pg_ledger), Ledger(pg_ledger)
    yield first, second
    first.close()
    second.close()


def test_a_call_is_refused_once_another_writer_has_reserved_the_budget_and_nothing_is_written(
    two_servers: tuple[Ledger, Ledger], pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    first, second = two_servers
    first.record_intent(_intent("first"), Reservation(tokens=2000, budget=40))  # the first may overshoot alone
    database = dbname(pg_ledger)
    count = (
        "SELECT (SELECT count(*) FROM planner_mcp.call_intents), (SELECT count(*) FROM planner_mcp.token_reservations)"
    )
    chained = pg_cluster.execute(count, dbname=database)
    with pytest.raises(BudgetExhausted) as refused:
        second.record_intent(_intent("second"), Reservation(tokens=2000, budget=40))
    assert (refused.value.committed, refused.value.budget) == (2000, 40)
    assert pg_cluster.execute(count, dbname=database) == chained
    # The refusal rolled back and released the chain's lock: the first writer goes on, and so does the second.
    first.reserve_tokens("first", AGENT, Reservation(tokens=900, budget=40))
    second.record_intent(_intent("a read"))
    assert verify(pg_ledger).kinds() <= {"incomplete"}  # intents without outcomes yet, and nothing else


@pytest.mark.subprocess
def test_calls_in_separate_processes_on_one_postgresql_ledger_cannot_overspend_the_budget_together(
    llm: FakeOpenAI, pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path
) -> None:
    llm.default = Reply.text(plan_reply(), delay=2.0)
    env = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": llm.base_url,
        "PLANNER_MCP_MODEL": "test-model",
        "PLANNER_MCP_POLICY": str(policy_file(tmp_path / "policy.toml", daily_token_budget=_BUDGET)),
        "HOME": str(tmp_path),
    }
    env |= {"PLANNER_MCP_LEDGER": pg_ledger, "PATH": "/usr/bin:/bin"}
    with ExitStack() as processes:
        started = []
        for n in range(_PROCESSES):
            command = server_command("call", "generate_plan", json.dumps({"description": f"Add VM {n}"}))
            proc = processes.enter_context(
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            )
            processes.callback(proc.kill)  # before its exit waits for it, should one be stuck
            started.append(proc)
        outputs = [json.loads(p.communicate(timeout=WATCHDOG_S)[0]) for p in started]
    ran = [o for o in outputs if o["decision"] != "ERROR"]
    refused = [o for o in outputs if o["error"] and o["error"]["type"] == "TOKEN_BUDGET_EXHAUSTED"]
    assert len(ran) + len(refused) == _PROCESSES, outputs
    # While one call runs, every other is refused; a later one may start only after it settled at 18 tokens, so
    # at most three run one after another (0, 18, 36: each under 40) and the day ends at most one call over.
    assert 1 <= len(ran) <= 3 and len(llm.chat_requests) == len(ran)
    [(spent,)] = pg_cluster.execute(
        "SELECT coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0)"
        " FROM planner_mcp.agent_actions",
        dbname=dbname(pg_ledger),
    )
    assert spent == 18 * len(ran) and spent < _BUDGET + 18
    assert verify(pg_ledger).status == "ok"
