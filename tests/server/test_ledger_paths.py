"""The ledger commands open the file they were named, whatever characters its name holds, and create none."""

import json
import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from server import Settings
from tests.conftest import call, connect
from tests.processes import run_cli, run_server

pytestmark = pytest.mark.subprocess

# Each cut where SQLite's URI syntax would end the file name: `#` starts a fragment, `?` a query, `%` an escape.
NAMES = ["audit#2026.db", "audit?2026.db", "audit%3F2026.db", "audit 2026 (copy).db"]


def _record(ledger_path: Path) -> None:
    async def run() -> None:
        async with connect(Settings(ledger_path=ledger_path)) as client:
            await call(client, "read_docs", {"name": "backup-restore"})
            await call(client, "ssh", {"host": "pve01"})

    anyio.run(run)


def _copy(source: Path, target: Path) -> None:
    """A clean, consistent copy, the way an intruder would plant one (SQLite's backup, WAL included)."""
    with sqlite3.connect(source.absolute()) as src, sqlite3.connect(target.absolute()) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def _files(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if not name.endswith(("-wal", "-shm", ".lock"))}


@pytest.mark.parametrize("name", NAMES)
def test_read_only_commands_read_the_named_file_and_create_no_other(tmp_path: Path, name: str) -> None:
    ledger_path = tmp_path / name
    _record(ledger_path)
    proc = run_cli(ledger_path, "ledger", "tail", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["action"] for line in proc.stdout.splitlines()] == ["read_docs", "ssh"]
    for command in (["verify"], ["stats"], ["export"], ["checkpoint"]):
        done = run_cli(ledger_path, "ledger", *command)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert _files(tmp_path) == {name}


def test_verify_checks_a_tampered_ledger_even_with_a_clean_copy_where_its_name_would_be_cut(tmp_path: Path) -> None:
    ledger_path = tmp_path / "audit#2026.db"
    _record(ledger_path)
    _copy(ledger_path, tmp_path / "audit")  # what `file:…/audit#2026.db?mode=ro` used to open, read-write
    conn = sqlite3.connect(ledger_path)
    try:
        conn.execute("DROP TRIGGER agent_actions_no_update")
        conn.execute("UPDATE agent_actions SET decision = 'EXECUTE' WHERE action = 'ssh'")
    finally:
        conn.close()
    proc = run_cli(ledger_path, "ledger", "verify", "--json")
    report = json.loads(proc.stdout)
    assert (proc.returncode, report["status"], report["ledger"]) == (1, "tampered", str(ledger_path))


@pytest.mark.parametrize("command", ["tail", "stats", "verify", "export", "checkpoint"])
def test_a_missing_ledger_is_an_error_naming_it_and_reading_creates_nothing(tmp_path: Path, command: str) -> None:
    ledger_path = tmp_path / "audit#2026.db"
    proc = run_cli(ledger_path, "ledger", command)
    assert proc.returncode != 0
    assert f"there is no ledger at {ledger_path}" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_a_relative_ledger_path_that_looks_like_a_uri_is_written_as_named(tmp_path: Path) -> None:
    """SQLite builds that read `file:` names as URIs (Debian's does) would write `file:audit#1.db` to `audit`."""
    proc = run_server(Path("file:audit#1.db"), "call", "list_docs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _files(tmp_path) == {"file:audit#1.db"}


def test_a_link_planted_at_the_lock_file_is_not_followed(tmp_path: Path) -> None:
    """Someone who can write the ledger's folder must not have the server create files where the link points."""
    ledger_path = tmp_path / "ledger.db"
    victim = tmp_path / "elsewhere" / "created-by-the-server"
    victim.parent.mkdir()
    ledger_path.with_name("ledger.db.lock").symlink_to(victim)
    proc = run_cli(ledger_path, "call", "list_docs")
    assert proc.returncode == 1
    assert f"lock file {ledger_path}.lock: it is a link" in proc.stdout + proc.stderr
    assert not victim.exists()
