"""An acknowledged call survives a crash of PostgreSQL, whatever the database's own durability default."""

from collections.abc import Callable
from typing import Literal

import pytest

from ledger import Intent, Ledger, Outcome, utc_now, verify
from tests.conftest import init_ledger
from tests.postgres_cluster import PostgresCluster

# The database's default loses commits to a crash: its WAL writer flushes only every 10 s.
_CARELESS = {"synchronous_commit": "off", "wal_writer_delay": "10000ms"}


def _call(ledger: Ledger, n: int) -> None:
    intent = Intent(timestamp=utc_now(), agent_id="a", agent_version="1", tier=0, action="read_docs",
                    arguments={"n": n}, tools_digest="d", request_id=f"r{n}")  # fmt: skip
    at = ledger.record_intent(intent)
    fields = {name: getattr(intent, name) for name in intent.__dataclass_fields__}
    ledger.record_outcome(Outcome(**fields, decision="EXECUTE", confidence=1.0, success=True, intent_id=at.id))


@pytest.mark.parametrize("crash", ["immediate", "fast"])
def test_every_acknowledged_outcome_survives_a_crash_when_the_database_default_is_asynchronous(
    pg_cluster_factory: Callable[..., PostgresCluster], crash: Literal["immediate", "fast"]
) -> None:
    cluster = pg_cluster_factory(settings=_CARELESS)
    cluster.create_database("audit")
    url = init_ledger(cluster, "audit")
    ledger = Ledger(url)
    try:
        for n in range(20):
            _call(ledger, n)
    finally:
        ledger.close()
    cluster.stop(crash)
    cluster.start()
    report = verify(url)
    assert report.status == "ok", report.findings
    assert report.rows == 40  # every intent and every outcome: each outcome's flush carried its intent too


@pytest.mark.parametrize(("sync", "expected"), [("full", "on"), ("normal", "off")])
def test_the_ledger_sets_its_own_commit_durability_over_the_role_and_database_defaults(
    pg_cluster: PostgresCluster, pg_ledger: str, sync: Literal["full", "normal"], expected: str
) -> None:
    """The ledger, not whoever configured the role, decides whether an outcome's commit waits for the WAL flush:
    PLANNER_MCP_LEDGER_SYNC=normal (recorded in the chain) is the only way to turn it off."""
    role = pg_ledger.split("://", 1)[1].split(":", 1)[0]
    pg_cluster.execute(f"ALTER ROLE {role} SET synchronous_commit = {'off' if sync == 'full' else 'on'}")
    ledger = Ledger(pg_ledger, synchronous=sync)
    try:
        _call(ledger, 1)
        assert ledger._read(lambda conn: conn.execute("SHOW synchronous_commit").fetchone()[0]) == expected
    finally:
        ledger.close()
