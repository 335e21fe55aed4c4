"""Named, append-only schema migrations, recorded in the database that received them.

Never edit a migration that has shipped: add a new one. A database is brought up to date when it is opened.
"""

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

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


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks, in one write transaction; return their names.

    `BEGIN IMMEDIATE` takes the write lock first, so two processes opening a new file cannot both migrate it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        applied = []
        for fn in MIGRATIONS:
            if fn.__name__ in done:
                continue
            fn(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (fn.__name__, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            applied.append(fn.__name__)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return applied
