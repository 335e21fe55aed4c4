"""The doctor's view of the ledger: can it be written, how durably, and is the head of its chain intact.

Read-only: the doctor never creates, migrates or repairs the ledger. A full check of every row is
`planner-mcp ledger verify`; here the schema and the newest row are checked, as every server does before
writing.
"""

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ledger import LedgerError
from ledger.append import check_head
from ledger.chain import Hasher
from ledger.reader import chained_tables
from ledger.sqlite_storage import SqliteStorage
from server.config.ledger import ledger_key
from server.config.settings import Settings, SettingsError
from server.doctor.check import Check
from server.doctor.postgres import postgres_checks

__all__ = ["ledger_checks"]

_WAL_RESET_FIXED = (3, 51, 3)


def ledger_checks(settings: Settings) -> Iterator[Check]:
    path = settings.ledger_path
    if not isinstance(path, Path):
        yield from postgres_checks(settings, path)
        return
    yield _sqlite()
    if not path.exists():
        parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK):
            yield Check("ledger", "ok", f"{path} will be created on the first call")
        else:
            yield Check("ledger", "fail", f"{path} cannot be created", "Set PLANNER_MCP_LEDGER to a writable location.")
        return
    if not os.access(path, os.R_OK | os.W_OK):
        yield Check("ledger", "fail", f"{path} is not writable", "Fix its permissions, or set PLANNER_MCP_LEDGER.")
        return
    try:
        key = ledger_key(settings)
    except SettingsError as exc:
        yield Check("ledger.key", "fail", str(exc), "Fix PLANNER_MCP_LEDGER_KEY_FILE.")
        return
    try:
        storage = SqliteStorage(path)
        with storage.snapshot() as conn:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if found := storage.recorded_differences(conn):
                problem = found[0].problem
                raise LedgerError(f"the schema of {path} is not the one planner-mcp made: {problem}", "tampered")
            at = check_head(conn, Hasher(key), path, chained_tables(conn))
    except LedgerError as exc:
        fix = "Run `planner-mcp ledger verify` to see what changed." if exc.reason == "tampered" else ""
        yield Check("ledger", "fail", str(exc), fix or "Fix the ledger, or set PLANNER_MCP_LEDGER to a new file.")
        return
    except sqlite3.Error as exc:
        yield Check("ledger", "fail", f"{path} cannot be read: {exc}", "Set PLANNER_MCP_LEDGER to a new file.")
        return
    keyed = "keyed (HMAC-SHA256)" if key else "unkeyed (SHA-256; set PLANNER_MCP_LEDGER_KEY_FILE to key it)"
    yield Check("ledger", "ok", f"{path}: journal {mode}, chain head at seq {at.seq} intact, {keyed}")
    if settings.ledger_sync != "full":
        yield Check(
            "ledger.durability",
            "warn",
            "synchronous=NORMAL: the last calls recorded before a power failure may be lost",
            "Unset PLANNER_MCP_LEDGER_SYNC for synchronous=FULL.",
        )


def _sqlite() -> Check:
    version = sqlite3.sqlite_version
    if sqlite3.sqlite_version_info >= _WAL_RESET_FIXED:
        return Check("ledger.sqlite", "ok", f"SQLite {version}")
    return Check(
        "ledger.sqlite",
        "ok",
        f"SQLite {version} predates the WAL-reset fix (3.51.3); ledger writes and checkpoints are serialised "
        "by a lock file, which avoids it",
    )
