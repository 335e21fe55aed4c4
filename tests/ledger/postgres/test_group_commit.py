"""Group commit on a PostgreSQL ledger as on SQLite (tests/ledger/test_group_commit.py): writes made at once share
one transaction (their rows carry one transaction id), and a write refused on its own fails alone."""

import functools
from collections.abc import Iterator

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

from ledger import BudgetExhausted, Intent, Ledger, Position, Reservation, verify
from tests.ledger.postgres.conftest import dbname
from tests.ledger.together import opened, together
from tests.postgres_cluster import PostgresCluster

pytestmark = pytest.mark.anyio


def _intent(request_id: str) -> Intent:
    return Intent(
        request_id=request_id, timestamp="2026-12-06T10:00:00.000Z", agent_id="llm-planner-001", agent_version="0.1.0",
        tier=0, action="analyze", arguments={"n": request_id}, tools_digest="d",
    )  # fmt: skip


@pytest.fixture
def ledger(pg_ledger: str) -> Iterator[Ledger]:
    with opened(pg_ledger) as ledger:
        yield ledger


def _transactions(cluster: PostgresCluster, url: str) -> dict[str, int]:
    """Each intent's inserting transaction (`xmin`), by request id."""
    found = cluster.execute("SELECT request_id, xmin::text FROM planner_mcp.call_intents", dbname=dbname(url))
    return {request_id: int(xmin) for request_id, xmin in found}


async def test_writes_made_at_once_share_one_transaction_and_a_refused_one_fails_alone(
    ledger: Ledger, pg_cluster: PostgresCluster, pg_ledger: str
) -> None:
    ledger.record_intent(_intent("spent"), Reservation(tokens=1000, budget=1000))
    done = await together(ledger, [
        functools.partial(ledger.record_intent, _intent("first")),
        functools.partial(ledger.record_intent, _intent("refused"), Reservation(tokens=10, budget=1000)),
        *[functools.partial(ledger.record_intent, _intent(f"then{i}")) for i in range(4)],
    ])  # fmt: skip
    assert isinstance(done[1], BudgetExhausted), done
    positions = [done[0], *done[2:]]
    assert all(isinstance(p, Position) for p in positions), done
    assert [p.seq for p in positions] == list(range(positions[0].seq, positions[0].seq + 5))
    transactions = _transactions(pg_cluster, pg_ledger)
    assert "refused" not in transactions
    assert len({transactions[r] for r in ("first", "then0", "then1", "then2", "then3")}) == 1
    assert transactions["spent"] != transactions["first"]
    assert verify(pg_ledger).kinds() <= {"incomplete"}
