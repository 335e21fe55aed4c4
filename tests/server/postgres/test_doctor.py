"""`planner-mcp doctor` on a PostgreSQL ledger: the role's privileges checked in the database itself, TLS and
synchronous_commit as the session has them, and a clear failure when the database or the driver is missing."""

import secrets
from pathlib import Path

import pytest

from server.doctor.postgres import tls_check
from tests.postgres_cluster import PostgresCluster
from tests.processes import run_cli
from tests.server.postgres.calls import nothing_listening, without_psycopg

pytestmark = pytest.mark.subprocess

SECRET = "d0ctor-Pa55"


def _doctor(url: str, tmp_path: Path) -> tuple[int, dict[str, list[str]]]:
    """The doctor's exit code and its ledger lines, by check name: `["ok", "detail", "fix: ..."]`."""
    proc = run_cli(tmp_path / "ledger.db", "doctor", PLANNER_MCP_LEDGER=url)
    assert SECRET not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, _ledger_lines(proc.stdout)


def _ledger_lines(stdout: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    last = None
    for line in stdout.splitlines():
        if line.startswith("      fix: ") and last is not None:
            found[last].append(line.strip())
            continue
        mark, _, rest = line.partition("  ")
        name, _, detail = rest.strip().partition(": ")
        last = name if name.startswith("ledger") else None
        if last is not None:
            found.setdefault(last, []).extend([mark.strip(), detail])
    return found


def _role(cluster: PostgresCluster, url: str, name: str, *in_roles: str) -> tuple[str, str]:
    """A login role of the test's own (roles are the whole cluster's, shared by every test): its name and URL."""
    name = f"{name}_{secrets.token_hex(3)}"
    cluster.create_role(name, SECRET, in_roles=in_roles)
    return name, cluster.url(name, SECRET, url.rsplit("/", 1)[1])


def test_a_writer_role_passes_with_its_privileges_named(
    pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path
) -> None:
    role, url = _role(pg_cluster, pg_ledger, "fleet_writer", "planner_mcp_writer")
    _, lines = _doctor(url, tmp_path)
    assert lines["ledger.role"] == [
        "ok", f"role {role}, member of planner_mcp_writer: call_intents: SELECT, INSERT; agent_actions: SELECT, "
        "INSERT; ledger_events: SELECT, INSERT; token_reservations: SELECT, INSERT; agent_metrics: SELECT, INSERT, "
        "UPDATE; no UPDATE, DELETE or TRUNCATE on chained rows",
    ]  # fmt: skip
    assert lines["ledger.tls"][0] == "ok" and lines["ledger.tls"][1].startswith("127.0.0.1 is this machine: no TLS")
    assert lines["ledger.durability"] == ["ok", "synchronous_commit=on"]
    assert lines["ledger"][0] == "ok" and "chain head at seq 0 intact" in lines["ledger"][1]


def test_the_owner_fails_since_it_could_change_the_rows(
    pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path
) -> None:
    code, lines = _doctor(pg_cluster.superuser_url(pg_ledger.rsplit("/", 1)[1]), tmp_path)
    assert code == 1 and lines["ledger.role"][0] == "FAIL"
    assert lines["ledger.role"][1] == (
        "role postgres (a superuser) could change or remove ledger rows (UPDATE, DELETE, TRUNCATE, OWNER, SUPERUSER "
        "on call_intents; UPDATE, DELETE, TRUNCATE, OWNER, SUPERUSER on agent_actions; UPDATE, DELETE, TRUNCATE, "
        "OWNER, SUPERUSER on ledger_events; UPDATE, DELETE, TRUNCATE, OWNER, SUPERUSER on token_reservations)"
    )
    assert "IN ROLE planner_mcp_writer" in lines["ledger.role"][2]


def test_a_grant_of_update_or_delete_fails(pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path) -> None:
    role, url = _role(pg_cluster, pg_ledger, "too_much", "planner_mcp_writer")
    pg_cluster.execute(f"GRANT DELETE ON planner_mcp.ledger_events TO {role}", dbname=pg_ledger.rsplit("/", 1)[1])
    code, lines = _doctor(url, tmp_path)
    assert code == 1
    assert lines["ledger.role"][:2] == [
        "FAIL", f"role {role}, member of planner_mcp_writer could change or remove ledger rows (DELETE on "
        "ledger_events)",
    ]  # fmt: skip


def test_a_role_without_privileges_fails_naming_what_it_lacks(
    pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path
) -> None:
    role, url = _role(pg_cluster, pg_ledger, "nobody_special")
    code, lines = _doctor(url, tmp_path)
    assert code == 1
    assert lines["ledger.role"] == [
        "FAIL", f"role {role} lacks what a server needs to record calls (USAGE on schema planner_mcp; SELECT, "
        "INSERT on call_intents; "
        "SELECT, INSERT on agent_actions; SELECT, INSERT on ledger_events; SELECT, INSERT on token_reservations; "
        "SELECT, INSERT, UPDATE on agent_metrics)", f"fix: GRANT planner_mcp_writer TO {role};",
    ]  # fmt: skip
    assert lines["ledger"][0] == "FAIL"


def test_synchronous_commit_off_for_the_role_warns(pg_cluster: PostgresCluster, pg_ledger: str, tmp_path: Path) -> None:
    role, url = _role(pg_cluster, pg_ledger, "hasty", "planner_mcp_writer")
    pg_cluster.execute(f"ALTER ROLE {role} SET synchronous_commit = off")
    _, lines = _doctor(url, tmp_path)
    status, detail, fix = lines["ledger.durability"]
    assert status == "WARN" and detail.startswith("synchronous_commit is off") and f"for role {role}:" in detail
    assert fix.startswith(f"fix: ALTER ROLE {role} RESET synchronous_commit;")
    assert lines["ledger.role"][0] == "ok" and lines["ledger"][0] == "ok"


def test_an_unreachable_database_fails_clearly(tmp_path: Path) -> None:
    with nothing_listening() as port:
        code, lines = _doctor(f"postgresql://fleet:{SECRET}@127.0.0.1:{port}/ledger", tmp_path)
    assert code == 1 and lines["ledger"][0] == "FAIL"
    assert lines["ledger"][1].startswith(f"the ledger postgresql://fleet:***@127.0.0.1:{port}/ledger is down")
    assert "ledger.role" not in lines


def test_without_psycopg_the_doctor_says_which_extra_to_install(tmp_path: Path) -> None:
    url = f"postgresql://fleet:{SECRET}@127.0.0.1:1/ledger"
    proc = without_psycopg(tmp_path / "ledger.db", "doctor", PLANNER_MCP_LEDGER=url)
    lines = _ledger_lines(proc.stdout)
    assert proc.returncode == 1 and SECRET not in proc.stdout + proc.stderr, proc.stderr
    status, detail, fix = lines["ledger"]
    assert status == "FAIL" and "psycopg" in detail and fix == "fix: pip install 'planner-mcp[postgres]'"


@pytest.mark.parametrize(
    ("host", "sslmode", "tls", "status"),
    [
        ("127.0.0.1", "disable", None, "ok"),
        ("localhost", "prefer", None, "ok"),
        ("/var/run/postgresql", "prefer", None, "ok"),
        ("db.example", "verify-full", "TLSv1.3", "ok"),
        ("db.example", "prefer", None, "warn"),
        ("db.example", "require", "TLSv1.3", "warn"),
        ("db.example", "verify-ca", "TLSv1.3", "warn"),
        ("10.0.0.7", "disable", None, "warn"),
    ],
)
def test_tls_must_verify_the_server_and_its_name_beyond_this_machine(
    host: str, sslmode: str, tls: str | None, status: str
) -> None:
    check = tls_check(host, sslmode, tls)
    assert (check.name, check.status) == ("ledger.tls", status)
    assert f"sslmode={sslmode}" in check.detail
    assert ("sslmode=verify-full" in check.fix) == (status == "warn")
