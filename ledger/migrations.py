"""Named, append-only schema migrations, recorded in the database that received them.

Never edit a migration that has shipped: add a new one. A database is brought up to date when it is opened.
"""

import sqlite3
from collections.abc import Callable, Collection
from typing import cast

from ledger.append import Head, write_row
from ledger.chain import COLUMNS, GENESIS, Hasher
from ledger.records import utc_now
from ledger.storage import Conn

__all__ = ["MIGRATIONS", "migrate"]

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def _migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@_migration
def m001_seed_tables(conn: sqlite3.Connection) -> None:
    """The seed's agent_actions and agent_metrics, plus call intents.

    Every column the seed did not have is nullable or has a default, so the seed's own statements still run.
    """
    # One statement at a time: executescript() would COMMIT the migration's transaction first.
    _run_script(
        conn,
        """
        CREATE TABLE call_intents (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp     TEXT    NOT NULL,
            request_id    TEXT    NOT NULL UNIQUE,
            agent_id      TEXT    NOT NULL,
            agent_version TEXT    NOT NULL,
            tier          INTEGER NOT NULL,
            action        TEXT    NOT NULL,
            arguments     TEXT    NOT NULL,
            tools_digest  TEXT    NOT NULL
        );
        CREATE TABLE agent_actions (
            id                INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp         TEXT    NOT NULL,
            agent_id          TEXT    NOT NULL,
            agent_version     TEXT    NOT NULL,
            tier              INTEGER NOT NULL,
            action            TEXT    NOT NULL,
            decision          TEXT    NOT NULL,
            confidence        REAL    NOT NULL,
            success           INTEGER NOT NULL,
            error_type        TEXT,
            error_message     TEXT,
            request_id        TEXT    UNIQUE,
            intent_id         INTEGER REFERENCES call_intents(id),
            refused           INTEGER NOT NULL DEFAULT 0,
            duration_ms       REAL,
            arguments         TEXT    NOT NULL DEFAULT '{}',
            output_digest     TEXT,
            llm_model         TEXT,
            prompt_tokens     INTEGER,
            completion_tokens INTEGER,
            tools_digest      TEXT    NOT NULL DEFAULT ''
        );
        CREATE INDEX agent_actions_by_agent ON agent_actions(agent_id, id);
        CREATE TABLE agent_metrics (
            agent_id              TEXT PRIMARY KEY,
            current_tier          INTEGER,
            total_runs            INTEGER NOT NULL DEFAULT 0,
            compliant_runs        INTEGER NOT NULL DEFAULT 0,
            consecutive_compliant INTEGER NOT NULL DEFAULT 0,
            refused_runs          INTEGER NOT NULL DEFAULT 0,
            error_runs            INTEGER NOT NULL DEFAULT 0,
            last_active_at        TEXT,
            created_at            TEXT,
            updated_at            TEXT
        );
        """,
    )


@_migration
def m002_call_notes(conn: sqlite3.Connection) -> None:
    """A note on every row about the conditions of the call, such as Vault TLS verification being off."""
    _run_script(
        conn,
        """
        ALTER TABLE call_intents ADD COLUMN notes TEXT NOT NULL DEFAULT '';
        ALTER TABLE agent_actions ADD COLUMN notes TEXT NOT NULL DEFAULT ''
        """,
    )


@_migration
def m003_daily_token_usage(conn: sqlite3.Connection) -> None:
    """LLM tokens per agent per UTC day, kept with each outcome, so a budget check is one lookup, not a scan.

    Filled from the rows already recorded, so an upgraded ledger enforces today's budget from its first call.
    """
    _run_script(
        conn,
        """
        CREATE TABLE agent_token_usage (
            agent_id          TEXT    NOT NULL,
            day               TEXT    NOT NULL,
            prompt_tokens     INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            llm_calls         INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (agent_id, day)
        ) WITHOUT ROWID;
        INSERT INTO agent_token_usage (agent_id, day, prompt_tokens, completion_tokens, llm_calls)
            SELECT agent_id, substr(timestamp, 1, 10), SUM(COALESCE(prompt_tokens, 0)),
                   SUM(COALESCE(completion_tokens, 0)), COUNT(*)
            FROM agent_actions
            WHERE prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL
            GROUP BY agent_id, substr(timestamp, 1, 10)
        """,
    )


@_migration
def m004_hash_chain(conn: sqlite3.Connection) -> None:
    """One hash chain over intents, outcomes and ledger events, and triggers that refuse UPDATE and DELETE.

    Rows recorded before this version are chained in the order they were written (by timestamp), so the
    chain covers them from now on; an event row says how many there were and that, before the upgrade,
    nothing protected them.
    """
    _run_script(
        conn,
        """
        ALTER TABLE call_intents ADD COLUMN client_request_id TEXT;
        ALTER TABLE call_intents ADD COLUMN seq INTEGER;
        ALTER TABLE call_intents ADD COLUMN prev_hash TEXT;
        ALTER TABLE call_intents ADD COLUMN row_hash TEXT;
        ALTER TABLE agent_actions ADD COLUMN client_request_id TEXT;
        ALTER TABLE agent_actions ADD COLUMN seq INTEGER;
        ALTER TABLE agent_actions ADD COLUMN prev_hash TEXT;
        ALTER TABLE agent_actions ADD COLUMN row_hash TEXT;
        CREATE TABLE ledger_events (
            id        INTEGER PRIMARY KEY,
            seq       INTEGER,
            timestamp TEXT NOT NULL,
            kind      TEXT NOT NULL,
            detail    TEXT NOT NULL,
            prev_hash TEXT,
            row_hash  TEXT
        );
        CREATE UNIQUE INDEX call_intents_by_seq ON call_intents(seq);
        CREATE UNIQUE INDEX agent_actions_by_seq ON agent_actions(seq);
        CREATE UNIQUE INDEX ledger_events_by_seq ON ledger_events(seq);
        CREATE INDEX agent_actions_by_intent ON agent_actions(intent_id)
        """,
    )
    earlier = conn.execute(
        "SELECT 'call_intents', id, timestamp FROM call_intents UNION ALL "
        "SELECT 'agent_actions', id, timestamp FROM agent_actions ORDER BY 3, 1 DESC, 2"
    ).fetchall()
    hasher, prev = Hasher(), GENESIS
    for seq, (table, row_id, _) in enumerate(earlier, start=1):
        names = [n for n in COLUMNS[table] if n != "seq"]
        found = conn.execute(f"SELECT {', '.join(names)} FROM {table} WHERE id = ?", (row_id,)).fetchone()
        row_hash = hasher.row_hash(table, prev, {**dict(zip(names, found, strict=True)), "seq": seq})
        conn.execute(
            f"UPDATE {table} SET seq = ?, prev_hash = ?, row_hash = ? WHERE id = ?", (seq, prev, row_hash, row_id)
        )
        prev = row_hash
    if earlier:
        write_row(cast(Conn, conn), hasher, "ledger_events", {
            "timestamp": utc_now(), "kind": "chain-started",
            "detail": f"{len(earlier)} rows recorded before the hash chain existed were chained at the upgrade; "
            "nothing protected them before it.",
        }, Head(len(earlier), prev, earlier[-1][0]), 1)  # fmt: skip
    for table in ("call_intents", "agent_actions", "ledger_events"):  # the chained tables of this version
        _append_only(conn, table)


@_migration
def m005_outcomes_found_by_request(conn: sqlite3.Connection) -> None:
    """Drop the index of outcomes by intent id: every call paid a page write to keep it, and only `verify` read it.

    An outcome carries its intent's request id, which has a unique index already; `verify` finds an intent's
    outcome through that.
    """
    conn.execute("DROP INDEX IF EXISTS agent_actions_by_intent")


@_migration
def m006_token_reservations(conn: sqlite3.Connection) -> None:
    """Token budgets rest on the chain alone: reservations are chained rows, spending is read from outcomes.

    `agent_token_usage` was kept beside the chain, and a budget checked against it re-opened once the table
    was reset. A call's worst case (`max_tokens`, then its prompt's size) is reserved in a chained row in the
    same transaction that checks the budget; what a day has used is summed from the outcomes' own token
    counts through an index that holds only LLM calls, so the read tools' outcomes pay nothing for it.
    """
    _run_script(
        conn,
        """
        DROP TABLE agent_token_usage;
        CREATE TABLE token_reservations (
            id         INTEGER PRIMARY KEY,
            seq        INTEGER,
            timestamp  TEXT    NOT NULL,
            request_id TEXT    NOT NULL,
            agent_id   TEXT    NOT NULL,
            day        TEXT    NOT NULL,
            tokens     INTEGER NOT NULL,
            stage      TEXT    NOT NULL,
            prev_hash  TEXT,
            row_hash   TEXT
        );
        CREATE UNIQUE INDEX token_reservations_by_seq ON token_reservations(seq);
        CREATE INDEX token_reservations_by_day ON token_reservations(agent_id, day);
        CREATE INDEX token_reservations_by_request ON token_reservations(request_id);
        CREATE INDEX agent_actions_tokens_by_day
            ON agent_actions(agent_id, timestamp, prompt_tokens, completion_tokens)
            WHERE prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL
        """,
    )
    _append_only(conn, "token_reservations")


def _append_only(conn: sqlite3.Connection, table: str) -> None:
    for verb in ("UPDATE", "DELETE"):
        conn.execute(
            f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only: {table} rows cannot be changed'); END"
        )


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def migrate(conn: sqlite3.Connection, upto: Collection[str] | None = None) -> list[str]:
    """Apply the migrations this database lacks (of those named in `upto`, if given); return their names.

    The caller holds the write transaction (`BEGIN IMMEDIATE`, lock first), so two processes opening a new
    file cannot both migrate it, and a failed upgrade leaves the file as it was.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ not in done and (upto is None or fn.__name__ in upto):
            fn(conn)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (fn.__name__, utc_now()))
            applied.append(fn.__name__)
    return applied
