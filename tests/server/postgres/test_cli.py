"""`planner-mcp ledger init|verify|checkpoint|tail|stats|export` and `config show` on a PostgreSQL ledger, run as
an operator runs them: separate processes, a real cluster, and never a password in what they print."""

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from ledger.postgres.init import schema_sql
from tests.postgres_cluster import PostgresCluster
from tests.processes import run_cli
from tests.server.postgres.calls import nothing_listening, record, without_psycopg

pytestmark = pytest.mark.subprocess

SECRET = "s3cret-Pa55"
NO_DRIVER = "pip install 'planner-mcp[postgres]'\n"
READING = ("verify", "verify --json", "checkpoint", "tail --json", "stats --json", "export")


def _on(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(tmp_path / "ledger.db", *args, PLANNER_MCP_LEDGER=url)


def _printed(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def _writer(cluster: PostgresCluster, database_url: str) -> str:
    """A writer role of the test's own whose password is SECRET, so a test can look for it in all it prints."""
    name = f"fleet_{secrets.token_hex(3)}"
    cluster.create_role(name, SECRET, in_roles=("planner_mcp_writer",))
    return cluster.url(name, SECRET, database_url.rsplit("/", 1)[1])


def test_print_sql_prints_the_schema_with_no_database_and_no_url(tmp_path: Path) -> None:
    proc = run_cli(tmp_path / "ledger.db", "ledger", "init", "--print-sql")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == schema_sql() and "CREATE SCHEMA planner_mcp;" in proc.stdout
    with nothing_listening() as port:
        url = f"postgresql://owner:{SECRET}@127.0.0.1:{port}/ledger"
        assert _on(url, tmp_path, "ledger", "init", "--print-sql").stdout == schema_sql()
    assert not (tmp_path / "ledger.db").exists()


def test_without_psycopg_sql_is_printed_and_every_other_command_says_which_extra_to_install(tmp_path: Path) -> None:
    url = f"postgresql://owner:{SECRET}@127.0.0.1:1/ledger"
    printed = without_psycopg(tmp_path / "ledger.db", "ledger", "init", "--print-sql", PLANNER_MCP_LEDGER=url)
    assert printed.returncode == 0 and printed.stdout == schema_sql(), printed.stderr
    for args in (["init"], ["verify"], ["tail"], ["migrate", "--to", url]):
        where = str(tmp_path / "ledger.db") if args[0] == "migrate" else url
        proc = without_psycopg(tmp_path / "ledger.db", "ledger", *args, PLANNER_MCP_LEDGER=where)
        assert proc.returncode != 0 and proc.stdout == "" and "Traceback" not in proc.stderr, args
        assert proc.stderr.endswith(NO_DRIVER), args


def test_init_makes_the_ledger_as_its_owner_then_finds_nothing_to_do(
    pg_cluster: PostgresCluster, pg_database: str, tmp_path: Path
) -> None:
    made = _on(pg_database, tmp_path, "ledger", "init")
    assert made.returncode == 0, made.stderr
    assert "created the ledger schema planner_mcp" in made.stdout and ":***@" in made.stdout
    assert pg_cluster.password not in _printed(made)
    again = _on(pg_database, tmp_path, "ledger", "init")
    assert again.returncode == 0, again.stderr
    assert "already holds the ledger schema planner_mcp; nothing to do" in again.stdout
    writer = _writer(pg_cluster, pg_database)
    record(writer)
    assert _on(writer, tmp_path, "ledger", "verify").stdout.splitlines()[-1] == "OK"


def test_init_on_a_sqlite_ledger_says_there_is_nothing_to_make_and_makes_nothing(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "ledger", "init")
    assert proc.returncode == 0, proc.stderr
    assert f"the SQLite file {ledger_path}" in proc.stdout and "made by the server on its first call" in proc.stdout
    assert not ledger_path.exists() and not ledger_path.parent.exists()


def test_init_refused_says_why_without_the_password(
    pg_cluster: PostgresCluster, pg_database: str, tmp_path: Path
) -> None:
    role = f"not_owner_{secrets.token_hex(3)}"
    pg_cluster.create_role(role, SECRET)
    url = pg_cluster.url(role, SECRET, pg_database.rsplit("/", 1)[1])
    denied = _on(url, tmp_path, "ledger", "init")
    assert denied.returncode == 1 and denied.stdout == ""
    assert "refused this role a privilege it needs" in denied.stderr and f"{role}:***@127.0.0.1" in denied.stderr
    with nothing_listening() as port:
        gone = _on(f"postgresql://owner:{SECRET}@127.0.0.1:{port}/ledger", tmp_path, "ledger", "init")
    assert gone.returncode == 1 and "is down" in gone.stderr and ":***@127.0.0.1" in gone.stderr
    for proc in (denied, gone):
        assert SECRET not in _printed(proc) and "Traceback" not in proc.stderr


def test_every_reading_command_reads_a_postgresql_ledger_and_never_prints_its_password(
    pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path
) -> None:
    url = _writer(pg_cluster, pg_ledger)
    record(url)
    shown = url.replace(f":{SECRET}@", ":***@")
    procs = {args: _on(url, tmp_path, "ledger", *args.split()) for args in READING}
    assert all(proc.returncode == 0 and SECRET not in _printed(proc) for proc in procs.values()), procs
    assert procs["verify"].stdout.startswith(f"ledger {shown}: 7 rows, head seq 7 v1:sha256:")
    report = json.loads(procs["verify --json"].stdout)
    assert (report["ledger"], report["status"], report["rows"]) == (shown, "ok", 7)
    anchor = json.loads(procs["checkpoint"].stdout)
    assert (anchor["seq"], anchor["hash"]) == (7, report["head"]["hash"])
    tail = [json.loads(line) for line in procs["tail --json"].stdout.splitlines()]
    assert [row["action"] for row in tail] == ["read_docs", "list_docs", "ssh", "read_inventory"]
    stats = json.loads(procs["stats --json"].stdout)
    assert [(row["total_runs"], row["refused_runs"]) for row in stats] == [(4, 1)]
    exported = [json.loads(line) for line in procs["export"].stdout.splitlines()]
    assert [row["seq"] for row in exported] == list(range(1, 8)) and exported[-1]["row_hash"] == anchor["hash"]


def test_a_reading_command_that_cannot_reach_the_database_names_it_without_the_password(tmp_path: Path) -> None:
    with nothing_listening() as port:
        url = f"postgresql://auditor:{SECRET}@127.0.0.1:{port}/ledger"
        procs = {args[0]: _on(url, tmp_path, "ledger", *args) for args in (["verify"], ["tail"], ["export"])}
    assert [proc.returncode for proc in procs.values()] == [4, 1, 1]
    for proc in procs.values():
        assert f"auditor:***@127.0.0.1:{port}/ledger is down" in proc.stderr
        assert SECRET not in _printed(proc) and "Traceback" not in proc.stderr


def test_config_show_prints_the_postgresql_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://fleet:{SECRET}@db.example:5432/ledger?sslmode=verify-full&password={SECRET}"
    text = _on(url, tmp_path, "config", "show")
    shown = "postgresql://fleet:***@db.example:5432/ledger?sslmode=verify-full&password=***"
    assert text.returncode == 0 and f'PLANNER_MCP_LEDGER = "{shown}"' in text.stdout
    settings = json.loads(_on(url, tmp_path, "config", "show", "--json").stdout)["settings"]
    assert next(s["value"] for s in settings if s["name"] == "PLANNER_MCP_LEDGER") == shown
    assert SECRET not in text.stdout + text.stderr
