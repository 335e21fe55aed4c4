"""The mutation suite on both engines: each edit of a copy of a real ledger is named by `verify`, alike on each.

The ledgers are written by the server itself through the gate (the calls of `tests/ledger/conftest.py`), plain
and keyed, once to a SQLite file and once to a PostgreSQL database; each test edits a copy. On SQLite the
attacker can write the file and drops the append-only triggers first (`tests/ledger/test_mutations.py`); on
PostgreSQL they are a superuser who sets `session_replication_role = replica`, which skips every trigger and
leaves the schema as it was, so only the chain can show the edit. Each mutation is applied to both copies through
the same SQL, and verify must name it with the same kinds, at the same place in the chain.
"""

import contextlib
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")


from ledger import Report, checkpoint, verify
from ledger.chain import TABLES, Hasher
from ledger.connection import SqliteConn
from ledger.storage import Conn
from ledger.verify import Kind
from server import Settings
from tests.conftest import call, call_once, connect, init_ledger, recount_metrics
from tests.ledger.conftest import CALLS, KEY
from tests.ledger.postgres.conftest import ledger_conn
from tests.postgres_cluster import PostgresCluster

ENGINES = ["sqlite", "postgres"]


@dataclass
class Copy:
    """A copy of a real ledger to edit: `location` is what an auditor verifies, `writer` what a server uses."""

    engine: str
    location: Path | str
    writer: Path | str

    @contextmanager
    def attack(self, *, careful: bool = True) -> Iterator[Conn]:
        """A connection that edits rows past the append-only triggers; a `careful` attacker then recounts
        agent_metrics (outside the chain) to agree with the edited outcomes."""
        with _sqlite_attack(Path(self.location)) if self.engine == "sqlite" else _pg_attack(str(self.location)) as conn:
            yield conn
            if careful:
                recount_metrics(cast(sqlite3.Connection, conn))

    @contextmanager
    def as_writer(self) -> Iterator[Conn]:
        """A connection with what a server has: the file itself, or the writer role (INSERT, never UPDATE)."""
        if self.engine == "sqlite":
            with contextlib.closing(sqlite3.connect(self.writer, isolation_level=None, factory=SqliteConn)) as conn:
                yield conn
            return
        with ledger_conn(str(self.writer)) as conn:
            yield conn


@contextmanager
def _sqlite_attack(path: Path) -> Iterator[Conn]:
    conn = sqlite3.connect(path, isolation_level=None, factory=SqliteConn)
    try:
        for table in TABLES:
            for verb in ("update", "delete"):
                conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        yield conn
    finally:
        conn.close()


@contextmanager
def _pg_attack(url: str) -> Iterator[Conn]:
    with ledger_conn(url, "session_replication_role = replica") as conn:
        yield conn


def tampering(report: Report) -> set[Kind]:
    """What verify named, apart from the triggers SQLite's attacker drops and the calls a deleted outcome leaves
    without one (reported, but not as tampering)."""
    return report.kinds() - {"unprotected", "incomplete"}


# --- the ledgers ---------------------------------------------------------------------------------------------


async def _write(writer: Path | str, key_file: Path | None) -> None:
    async with connect(Settings(ledger_path=writer, ledger_key_file=key_file)) as client:
        for tool, args in CALLS:
            await call(client, tool, args)


@pytest.fixture(scope="module")
def pg_originals(pg_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Real PostgreSQL ledgers, written by the server as a writer role: the databases each test copies."""
    key_file = tmp_path_factory.mktemp("pg-key") / "ledger.key"
    key_file.write_bytes(KEY)
    made = {}
    for kind in ("plain", "keyed"):
        name = f"original_{kind}_{secrets.token_hex(4)}"
        pg_cluster.create_database(name)
        writer = init_ledger(pg_cluster, name)
        anyio.run(_write, writer, key_file if kind == "keyed" else None)
        made[kind] = name
    yield made
    for name in made.values():
        pg_cluster.drop_database(name)


@pytest.fixture
def copy_of(
    request: pytest.FixtureRequest, originals: dict[str, Path], tmp_path: Path
) -> Iterator[Callable[[str], Copy]]:
    """`copy_of("plain")`: a fresh copy of that ledger on the engine the test is parametrised with."""
    engine = request.param
    made: list[str] = []
    cluster: PostgresCluster | None = request.getfixturevalue("pg_cluster") if engine == "postgres" else None
    pg = request.getfixturevalue("pg_originals") if engine == "postgres" else {}

    def make(kind: str) -> Copy:
        if cluster is None:
            target = tmp_path / f"{kind}.db"
            target.write_bytes(originals[kind].read_bytes())
            return Copy("sqlite", target, target)
        name = f"copy_{secrets.token_hex(5)}"
        cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg[kind]}"')
        made.append(name)
        role, password = f"writer_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        cluster.create_role(role, password, in_roles=("planner_mcp_writer",))
        return Copy("postgres", cluster.superuser_url(name), cluster.url(role, password, name))

    yield make
    for name in made:
        assert cluster is not None
        cluster.drop_database(name)


both = pytest.mark.parametrize("copy_of", ENGINES, indirect=True)


# --- the mutations, one SQL for both engines -------------------------------------------------------------------


def _seq_of(conn: Conn, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def _row(conn: Conn, table: str, seq: int) -> dict[str, Any]:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE seq = ?", (seq,))
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))


def _chain(conn: Conn) -> list[tuple[str, int]]:
    found = [(t, int(s)) for t in TABLES for (s,) in conn.execute(f"SELECT seq FROM {t} WHERE seq IS NOT NULL")]
    return sorted(found, key=lambda item: item[1])


def _rehash_from(conn: Conn, start: int, hasher: Hasher) -> None:
    """What an attacker does to hide an edit: recompute every hash from the edited row to the head."""
    chain = _chain(conn)
    prev = next(_row(conn, t, s)["row_hash"] for t, s in chain if s == start - 1)
    for table, seq in chain:
        if seq >= start:
            new_hash = hasher.row_hash(table, prev, _row(conn, table, seq))
            conn.execute(f"UPDATE {table} SET prev_hash = ?, row_hash = ? WHERE seq = ?", (prev, new_hash, seq))
            prev = new_hash


def _ssh_outcome(conn: Conn) -> int:
    return _seq_of(conn, "SELECT seq FROM agent_actions WHERE action = 'ssh'")


@both
def test_an_untouched_copy_verifies_intact(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    report = verify(copy.location)
    assert report.status == "ok", report.findings
    schema_event = 1 if copy.engine == "sqlite" else 0  # `ledger init` makes PostgreSQL's schema, unchained
    assert report.rows == report.head_seq == schema_event + 2 * len(CALLS) - 2  # refusals have no intent


@both
def test_a_changed_field_is_named_altered_at_its_row(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    with copy.attack() as conn:
        seq = _ssh_outcome(conn)
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE', success = 1, error_type = NULL WHERE seq = ?",
                     (seq,))  # fmt: skip
    report = verify(copy.location)
    assert tampering(report) == {"altered"}
    assert [f.seq for f in report.findings if f.kind == "altered"] == [seq]
    if copy.engine == "postgres":
        assert report.kinds() == {"altered"}  # the triggers were skipped, not touched: the schema is intact


@both
def test_a_deleted_row_is_named_missing(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    with copy.attack() as conn:
        seq = _seq_of(conn, "SELECT seq FROM call_intents ORDER BY seq LIMIT 1 OFFSET 2")
        conn.execute("DELETE FROM call_intents WHERE seq = ?", (seq,))
    report = verify(copy.location)
    assert tampering(report) == {"missing"}
    assert ("missing", seq) in [(f.kind, f.seq) for f in report.findings]


@both
def test_swapped_rows_are_named_reordered(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    with copy.attack() as conn:
        a = _seq_of(conn, "SELECT seq FROM agent_actions ORDER BY seq LIMIT 1 OFFSET 1")
        b = _seq_of(conn, "SELECT seq FROM agent_actions ORDER BY seq LIMIT 1 OFFSET 4")
        conn.execute("UPDATE agent_actions SET seq = -1 WHERE seq = ?", (a,))
        conn.execute("UPDATE agent_actions SET seq = ? WHERE seq = ?", (a, b))
        conn.execute("UPDATE agent_actions SET seq = ? WHERE seq = -1", (b,))
    report = verify(copy.location)
    assert tampering(report) == {"reordered"}
    [finding] = [f for f in report.findings if f.kind == "reordered"]
    assert finding.seq == a and f"seq {b}" in finding.detail


@both
def test_a_forged_row_inserted_into_the_middle_is_named_inserted(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    with copy.attack() as conn:
        k = _seq_of(conn, "SELECT seq FROM agent_actions ORDER BY seq LIMIT 1 OFFSET 2")
        for table in TABLES:  # make room: every row from k on moves up one place
            conn.execute(f"UPDATE {table} SET seq = -(seq + 1) WHERE seq >= ?", (k,))
            conn.execute(f"UPDATE {table} SET seq = -seq WHERE seq < 0")
        prev = next(_row(conn, t, s)["row_hash"] for t, s in _chain(conn) if s == k - 1)
        forged = _row(conn, "agent_actions", k + 1) | {"id": 999, "seq": k, "request_id": "forged"}
        forged |= {"prev_hash": prev, "row_hash": Hasher().row_hash("agent_actions", prev, forged)}
        conn.execute(f"INSERT INTO agent_actions ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
                     list(forged.values()))  # fmt: skip
    report = verify(copy.location)
    assert tampering(report) == {"inserted"}
    assert ("inserted", k) in [(f.kind, f.seq) for f in report.findings]


@both
def test_a_row_claiming_a_taken_place_is_named_inserted(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    with copy.attack() as conn:
        seq = _seq_of(conn, "SELECT seq FROM call_intents ORDER BY seq LIMIT 1 OFFSET 1")
        conn.execute(
            "INSERT INTO ledger_events (id, seq, timestamp, kind, detail, prev_hash, row_hash)"
            " VALUES (99, ?, '2026-11-24T00:00:00Z', 'note', 'all is well', 'x', 'y')",
            (seq,),
        )
    assert ("inserted", seq) in [(f.kind, f.seq) for f in verify(copy.location).findings]


@both
def test_a_truncated_tail_is_named_only_by_a_checkpoint(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    anchor, _ = checkpoint(copy.location)
    assert anchor is not None
    with copy.attack() as conn:
        for table in TABLES:
            conn.execute(f"DELETE FROM {table} WHERE seq > ?", (anchor.seq - 3,))
    assert tampering(verify(copy.location)) == set()  # a shorter chain is still a valid chain: hence checkpoints
    report = verify(copy.location, checkpoints=[anchor])
    assert tampering(report) == {"truncated"}
    assert [f.seq for f in report.findings if f.kind == "truncated"] == [anchor.seq - 2]


@both
def test_a_truncated_keyed_tail_is_not_shown_by_the_key_alone(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("keyed")
    anchor, _ = checkpoint(copy.location, key=KEY)
    assert anchor is not None
    with copy.attack() as conn:
        for table in TABLES:
            conn.execute(f"DELETE FROM {table} WHERE seq > ?", (anchor.seq - 2,))
    assert tampering(verify(copy.location, key=KEY)) == set()
    assert tampering(verify(copy.location, key=KEY, checkpoints=[anchor])) == {"truncated"}


@both
def test_counters_left_behind_or_rewritten_are_named_drift(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    with copy.attack(careful=False) as conn:
        last = _seq_of(conn, "SELECT max(seq) FROM agent_actions")
        conn.execute("DELETE FROM agent_actions WHERE seq = ?", (last,))
    report = verify(copy.location)
    assert tampering(report) == {"drift"}
    assert any("total_runs = 8" in f.detail and "say 7" in f.detail for f in report.findings)
    flattered = copy_of("plain")
    with flattered.attack(careful=False) as conn:
        conn.execute("UPDATE agent_metrics SET compliant_runs = total_runs, error_runs = 0, refused_runs = 0")
    details = " ".join(f.detail for f in verify(flattered.location).findings if f.kind == "drift")
    assert "compliant_runs" in details and "refused_runs" in details and "error_runs" in details


@both
def test_a_recomputed_chain_is_named_rewritten_by_a_checkpoint(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("plain")
    anchor, _ = checkpoint(copy.location)
    assert anchor is not None
    with copy.attack() as conn:
        seq = _ssh_outcome(conn)
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE', success = 1 WHERE seq = ?", (seq,))
        _rehash_from(conn, seq, Hasher())
    assert tampering(verify(copy.location)) == set()  # without an anchor, a recomputed SHA-256 chain holds
    report = verify(copy.location, checkpoints=[anchor])
    assert tampering(report) == {"rewritten"} and report.findings[0].seq == anchor.seq


@both
def test_a_keyed_copy_verifies_with_its_key_only(copy_of: Callable[[str], Copy]) -> None:
    copy = copy_of("keyed")
    assert verify(copy.location, key=KEY).status == "ok"
    assert verify(copy.location).status == "unverified"
    assert verify(copy.location, key=b"x" * 32).status == "tampered"


@both
@pytest.mark.parametrize(("guess", "named"), [(b"the attacker's guess at the key!", "rewritten"), (None, "downgraded")])
def test_a_keyed_chain_recomputed_without_the_key_is_named(
    copy_of: Callable[[str], Copy], guess: bytes | None, named: Kind
) -> None:
    copy = copy_of("keyed")
    with copy.attack() as conn:
        seq = _ssh_outcome(conn)
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE', success = 1 WHERE seq = ?", (seq,))
        _rehash_from(conn, seq, Hasher(guess))
    report = verify(copy.location, key=KEY)
    assert named in tampering(report)
    assert (named, seq) in [(f.kind, f.seq) for f in report.findings]


@both
@pytest.mark.anyio
async def test_an_unkeyed_row_forged_at_the_head_of_a_keyed_chain_is_refused(
    copy_of: Callable[[str], Copy], tmp_path: Path
) -> None:
    copy = copy_of("keyed")
    # No trigger stands in the way of an INSERT: on PostgreSQL the writer role itself may forge this row.
    with copy.as_writer() as conn:
        head_seq, head_hash = max(((s, _row(conn, t, s)["row_hash"]) for t, s in _chain(conn)), key=lambda h: h[0])
        (next_id,) = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM ledger_events").fetchone()
        row = {"id": next_id, "seq": head_seq + 1, "timestamp": "2026-12-05T00:00:00.000Z", "kind": "note",
               "detail": "ok"}  # fmt: skip
        conn.execute(
            "INSERT INTO ledger_events (id, seq, timestamp, kind, detail, prev_hash, row_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*row.values(), head_hash, Hasher().row_hash("ledger_events", head_hash, row)),
        )
    key_file = tmp_path / "ledger.key"
    key_file.write_bytes(KEY)
    key_file.chmod(0o600)
    _, output = await call_once(Settings(ledger_path=copy.writer, ledger_key_file=key_file), "list_docs")
    assert output["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert f"(seq {head_seq + 1}) is not keyed" in output["error"]["message"]
    assert ("downgraded", head_seq + 1) in [(f.kind, f.seq) for f in verify(copy.location, key=KEY).findings]
