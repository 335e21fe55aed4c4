"""The mutation suite: each way of editing a copy of a real ledger is detected by `verify` and named.

The attacker here has write access to the file: they drop the append-only triggers, edit rows, and know
the chain's public format (plain SHA-256), but not an HMAC key kept elsewhere.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ledger import Checkpoint, Report, checkpoint, verify
from ledger.chain import COLUMNS, TABLES, Hasher
from ledger.reader import Snapshot
from ledger.verify import Kind
from server import Settings
from tests.conftest import call_once, recount_metrics, rows
from tests.ledger.conftest import CALLS, KEY


@contextmanager
def attack(path: Path, *, careful: bool = True) -> Iterator[sqlite3.Connection]:
    """Write access to the file: the append-only triggers are dropped first, as any editor of the file can.

    A `careful` attacker then makes agent_metrics (outside the chain) agree with the edited outcomes, so what
    is left to find is what the chain itself shows.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    for table in TABLES:
        for verb in ("update", "delete"):
            conn.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    try:
        yield conn
        if careful:
            recount_metrics(conn)
    finally:
        conn.close()


def tampering(report: Report) -> set[Kind]:
    """What verify named, apart from the dropped triggers every attack here leaves behind, and the calls a
    deleted outcome leaves without one (reported, but not as tampering)."""
    return report.kinds() - {"unprotected", "incomplete"}


def _seq_of(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def _row(conn: sqlite3.Connection, table: str, seq: int) -> dict[str, Any]:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE seq = ?", (seq,))
    return dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))


def _chain(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return sorted(
        ((t, s) for t in TABLES for (s,) in conn.execute(f"SELECT seq FROM {t} WHERE seq IS NOT NULL")),
        key=lambda item: item[1],
    )


def _rehash_from(conn: sqlite3.Connection, start: int, hasher: Hasher) -> None:
    """What an attacker does to hide an edit: recompute every hash from the edited row to the head."""
    prev = conn.execute("SELECT row_hash FROM (" + " UNION ALL ".join(
        f"SELECT seq, row_hash FROM {t}" for t in TABLES) + ") WHERE seq = ?", (start - 1,)).fetchone()[0]  # fmt: skip
    for table, seq in _chain(conn):
        if seq < start:
            continue
        row = _row(conn, table, seq)
        new_hash = hasher.row_hash(table, prev, row)
        conn.execute(f"UPDATE {table} SET prev_hash = ?, row_hash = ? WHERE seq = ?", (prev, new_hash, seq))
        prev = new_hash


def test_an_untouched_copy_verifies_intact(plain: Path) -> None:
    report = verify(plain)
    assert report.status == "ok", report.findings
    assert report.rows == report.head_seq == 1 + 2 * len(CALLS) - 2  # a schema event; refusals have no intent
    assert report.head_hash.startswith("v1:sha256:")


def test_a_flipped_byte_in_the_file_is_named_altered_at_its_row(plain: Path) -> None:
    conn = sqlite3.connect(plain)
    seq, digest = conn.execute("SELECT seq, output_digest FROM agent_actions ORDER BY seq LIMIT 1 OFFSET 3").fetchone()
    conn.close()
    data = bytearray(plain.read_bytes())
    at = data.index(digest.encode())
    assert data.count(digest.encode()) == 1
    data[at + 20] ^= 0x01  # one bit of one hex digit
    plain.write_bytes(bytes(data))
    report = verify(plain)
    assert report.status == "tampered"
    assert [(f.kind, f.seq) for f in report.findings] == [("altered", seq)]


def test_a_flipped_byte_in_the_files_structure_is_named_corrupt(plain: Path) -> None:
    data = bytearray(plain.read_bytes())
    data[4096] ^= 0xFF  # the page-type byte of the second page
    plain.write_bytes(bytes(data))
    report = verify(plain)
    assert report.status == "tampered" and report.kinds() == {"corrupt"}


def test_a_changed_field_is_named_altered_at_its_row(plain: Path) -> None:
    with attack(plain) as conn:
        seq = _seq_of(conn, "SELECT seq FROM agent_actions WHERE action = 'ssh'")
        # Hiding a refusal: the forbidden ssh call now reads as an ordinary success.
        conn.execute(
            "UPDATE agent_actions SET decision = 'EXECUTE', success = 1, error_type = NULL WHERE seq = ?", (seq,)
        )
    report = verify(plain)
    assert tampering(report) == {"altered"}
    assert [f.seq for f in report.findings if f.kind == "altered"] == [seq]


def test_a_fraction_in_a_flag_is_named_altered_though_it_truncates_to_what_was_hashed(keyed: Path) -> None:
    with attack(keyed) as conn:
        seq = _seq_of(conn, "SELECT seq FROM agent_actions WHERE success = 0 AND refused = 0 LIMIT 1")
        conn.execute("UPDATE agent_actions SET success = 0.5, refused = 0.5 WHERE seq = ?", (seq,))
    report = verify(keyed, key=KEY)
    assert tampering(report) == {"altered"}
    [found] = [f for f in report.findings if f.kind == "altered"]
    assert found.seq == seq and "success holds REAL 0.5 where the ledger writes INTEGER" in found.detail
    [entry] = [e for e in Snapshot(keyed).agent_log("llm-planner-001", 100) if e["seq"] == seq]
    assert entry["success"] is False and entry["refused"] is False  # a failure is not shown as a success


def test_a_value_of_the_wrong_storage_class_is_named_even_in_a_recomputed_unkeyed_chain(plain: Path) -> None:
    with attack(plain) as conn:
        seq = _seq_of(conn, "SELECT seq FROM agent_actions WHERE success = 0 AND refused = 0 LIMIT 1")
        conn.execute("UPDATE agent_actions SET success = 0.5 WHERE seq = ?", (seq,))
        _rehash_from(conn, seq, Hasher())  # SHA-256 anyone can recompute: the hashes hold, the type does not
    report = verify(plain)
    assert tampering(report) == {"altered"}
    assert [f.seq for f in report.findings if f.kind == "altered"] == [seq]


def _forge_unkeyed_event(path: Path) -> int:
    """Append a ledger event hashed with plain SHA-256, linked to the head: no trigger is needed to insert."""
    conn = sqlite3.connect(path, isolation_level=None)
    heads = " UNION ALL ".join(f"SELECT seq, row_hash FROM {t}" for t in TABLES)
    seq, head_hash = conn.execute(f"SELECT seq, row_hash FROM ({heads}) ORDER BY seq DESC LIMIT 1").fetchone()
    (next_id,) = conn.execute("SELECT max(id) + 1 FROM ledger_events").fetchone()
    row = {"id": next_id, "seq": seq + 1, "timestamp": "2026-12-05T00:00:00.000Z", "kind": "note", "detail": "ok"}
    row_hash = Hasher().row_hash("ledger_events", head_hash, row)
    conn.execute(
        "INSERT INTO ledger_events (id, seq, timestamp, kind, detail, prev_hash, row_hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*row.values(), head_hash, row_hash),
    )
    conn.close()
    return int(seq) + 1


@pytest.mark.anyio
@pytest.mark.parametrize("with_key", [True, False])
async def test_an_unkeyed_row_forged_at_the_head_of_a_keyed_chain_is_refused(
    keyed: Path, tmp_path: Path, with_key: bool
) -> None:
    forged = _forge_unkeyed_event(keyed)
    key_file = tmp_path / "ledger.key"
    key_file.write_bytes(KEY)
    settings = Settings(ledger_path=keyed, ledger_key_file=key_file if with_key else None)
    _, output = await call_once(settings, "list_docs")
    assert output["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert f"(seq {forged}) is not keyed" in output["error"]["message"]
    assert max(r["seq"] for r in rows(keyed, "ledger_events")) == forged  # nothing was chained after it
    assert ("downgraded", forged) in [(f.kind, f.seq) for f in verify(keyed, key=KEY).findings]


def test_a_deleted_row_is_named_missing(plain: Path) -> None:
    with attack(plain) as conn:
        seq = _seq_of(conn, "SELECT seq FROM call_intents ORDER BY seq LIMIT 1 OFFSET 2")
        conn.execute("DELETE FROM call_intents WHERE seq = ?", (seq,))
    report = verify(plain)
    assert tampering(report) == {"missing"}
    assert (("missing", seq)) in [(f.kind, f.seq) for f in report.findings]


def test_swapped_rows_are_named_reordered(plain: Path) -> None:
    with attack(plain) as conn:
        a = _seq_of(conn, "SELECT seq FROM agent_actions ORDER BY seq LIMIT 1 OFFSET 1")
        b = _seq_of(conn, "SELECT seq FROM agent_actions ORDER BY seq LIMIT 1 OFFSET 4")
        conn.execute("UPDATE agent_actions SET seq = -1 WHERE seq = ?", (a,))
        conn.execute("UPDATE agent_actions SET seq = ? WHERE seq = ?", (a, b))
        conn.execute("UPDATE agent_actions SET seq = ? WHERE seq = -1", (b,))
    report = verify(plain)
    assert tampering(report) == {"reordered"}
    [finding] = [f for f in report.findings if f.kind == "reordered"]
    assert finding.seq == a and f"seq {b}" in finding.detail


def test_a_row_inserted_into_the_middle_is_named_inserted(plain: Path) -> None:
    hasher = Hasher()
    with attack(plain) as conn:
        k = _seq_of(conn, "SELECT seq FROM agent_actions ORDER BY seq LIMIT 1 OFFSET 2")
        for table in TABLES:  # make room: every row from k on moves up one place
            conn.execute(f"UPDATE {table} SET seq = -(seq + 1) WHERE seq >= ?", (k,))
            conn.execute(f"UPDATE {table} SET seq = -seq WHERE seq < 0")
        forged = _row(conn, "agent_actions", k + 1) | {
            "id": 999,
            "seq": k,
            "request_id": "forged",
            "action": "list_docs",
        }
        prev = _row(conn, "call_intents" if _seq_in(conn, "call_intents", k - 1) else "agent_actions", k - 1)[
            "row_hash"
        ]
        forged |= {"prev_hash": prev, "row_hash": hasher.row_hash("agent_actions", prev, forged)}
        conn.execute(f"INSERT INTO agent_actions ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
                     list(forged.values()))  # fmt: skip
    report = verify(plain)
    assert tampering(report) == {"inserted"}
    assert ("inserted", k) in [(f.kind, f.seq) for f in report.findings]


def _seq_in(conn: sqlite3.Connection, table: str, seq: int) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} WHERE seq = ?", (seq,)).fetchone() is not None


def test_a_row_written_outside_the_ledger_is_named_inserted(plain: Path) -> None:
    # The seed's own INSERT still runs against the schema, but such a row has no place in the chain.
    with attack(plain) as conn:
        conn.execute(
            "INSERT INTO agent_actions (timestamp, agent_id, agent_version, tier, action, decision, confidence,"
            " success) VALUES ('2026-11-24T00:00:00Z', 'llm-planner-001', '0.1.0', 0, 'analyze', 'EXECUTE', 0.9, 1)"
        )
    report = verify(plain)
    assert "inserted" in tampering(report)
    assert any("no place in the chain" in f.detail for f in report.findings)


def test_a_row_claiming_a_taken_place_is_named_inserted(plain: Path) -> None:
    with attack(plain) as conn:
        seq = _seq_of(conn, "SELECT seq FROM call_intents ORDER BY seq LIMIT 1 OFFSET 1")
        conn.execute(
            "INSERT INTO ledger_events (id, seq, timestamp, kind, detail, prev_hash, row_hash)"
            " VALUES (99, ?, '2026-11-24T00:00:00Z', 'note', 'all is well', 'x', 'y')",
            (seq,),
        )
    report = verify(plain)
    assert ("inserted", seq) in [(f.kind, f.seq) for f in report.findings]


def test_a_truncated_tail_is_named_by_a_checkpoint(plain: Path, tmp_path: Path) -> None:
    anchor, _ = checkpoint(plain)
    assert anchor is not None
    with attack(plain) as conn:  # the counters are recounted too, as a careful intruder would
        for table in TABLES:
            conn.execute(f"DELETE FROM {table} WHERE seq > ?", (anchor.seq - 3,))
    assert tampering(verify(plain)) == set()  # a shorter chain is still a valid chain: hence checkpoints
    report = verify(plain, checkpoints=[anchor])
    assert tampering(report) == {"truncated"}
    assert [f.seq for f in report.findings if f.kind == "truncated"] == [anchor.seq - 2]


def test_a_truncated_tail_whose_counters_were_left_behind_is_named_drift(plain: Path) -> None:
    with attack(plain, careful=False) as conn:
        last = _seq_of(conn, "SELECT max(seq) FROM agent_actions")
        conn.execute("DELETE FROM agent_actions WHERE seq = ?", (last,))
    report = verify(plain)
    assert tampering(report) == {"drift"}
    assert any("total_runs = 8" in f.detail and "say 7" in f.detail for f in report.findings if f.kind == "drift")


def test_counters_rewritten_to_flatter_an_agent_are_named_drift(plain: Path) -> None:
    with attack(plain, careful=False) as conn:
        conn.execute("UPDATE agent_metrics SET compliant_runs = total_runs, error_runs = 0, refused_runs = 0")
    report = verify(plain)
    assert tampering(report) == {"drift"}
    details = " ".join(f.detail for f in report.findings)
    assert "compliant_runs" in details and "refused_runs" in details and "error_runs" in details


def test_a_recomputed_chain_is_named_rewritten_by_a_checkpoint(plain: Path) -> None:
    anchor, _ = checkpoint(plain)
    assert anchor is not None
    with attack(plain) as conn:
        seq = _seq_of(conn, "SELECT seq FROM agent_actions WHERE action = 'ssh'")
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE', success = 1 WHERE seq = ?", (seq,))
        _rehash_from(conn, seq, Hasher())
    assert tampering(verify(plain)) == set()  # without an anchor, a recomputed SHA-256 chain holds
    report = verify(plain, checkpoints=[anchor])
    assert tampering(report) == {"rewritten"}
    assert report.findings[0].seq == anchor.seq


def test_a_checkpoint_survives_its_text_round_trip(plain: Path) -> None:
    anchor, _ = checkpoint(plain)
    assert anchor is not None
    assert Checkpoint.parse_lines(anchor.to_json() + "\n\n") == [anchor]


def test_a_keyed_copy_verifies_with_its_key_only(keyed: Path) -> None:
    assert verify(keyed, key=KEY).status == "ok"
    assert verify(keyed).status == "unverified"
    assert verify(keyed, key=b"x" * 32).status == "tampered"


def test_a_keyed_chain_recomputed_without_the_key_is_named_rewritten(keyed: Path) -> None:
    with attack(keyed) as conn:
        seq = _seq_of(conn, "SELECT seq FROM agent_actions WHERE action = 'ssh'")
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE', success = 1 WHERE seq = ?", (seq,))
        _rehash_from(conn, seq, Hasher(b"the attacker's guess at the key!"))
    report = verify(keyed, key=KEY)
    assert tampering(report) == {"rewritten"}
    assert report.findings[0].seq == seq


def test_a_keyed_chain_recomputed_unkeyed_is_named_downgraded(keyed: Path) -> None:
    with attack(keyed) as conn:
        seq = _seq_of(conn, "SELECT seq FROM agent_actions WHERE action = 'ssh'")
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE', success = 1 WHERE seq = ?", (seq,))
        _rehash_from(conn, seq, Hasher())
    report = verify(keyed, key=KEY)
    assert "downgraded" in tampering(report)
    assert ("downgraded", seq) in [(f.kind, f.seq) for f in report.findings]


def test_dropping_the_append_only_triggers_is_itself_named(plain: Path) -> None:
    with attack(plain):
        pass
    report = verify(plain)
    assert report.kinds() == {"unprotected"} and report.status == "tampered"
    assert len(report.findings) == 2 * len(TABLES)


def test_the_hash_of_a_row_is_a_stable_contract() -> None:
    # v1 is documented: this exact row must keep this exact hash in every later version.
    row = dict.fromkeys(COLUMNS["ledger_events"]) | {
        "id": 1, "seq": 1, "timestamp": "2026-11-24T00:00:00.000Z", "kind": "schema", "detail": "schema created",
    }  # fmt: skip
    assert Hasher().row_hash("ledger_events", "genesis", row) == ("v1:sha256:" + _expected_v1_digest(row))


def _expected_v1_digest(row: dict[str, Any]) -> str:
    import hashlib
    import json

    body = {"prev": "genesis", "row": row, "table": "ledger_events"}
    data = b"planner-mcp-ledger/v1\0" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()
