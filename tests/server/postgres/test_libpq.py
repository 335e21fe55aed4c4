"""PLANNER_MCP_LEDGER follows libpq's conventions: the PG* variables and a passfile name the database and the
password, so neither need be in the URL; and `sslmode=verify-full` with `sslrootcert` is honoured, so a
database that cannot prove it is the one named is refused."""

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme

from ledger import verify
from server import Settings
from tests.conftest import call_once, init_ledger
from tests.postgres_cluster import PostgresCluster
from tests.processes import run_cli

pytestmark = pytest.mark.anyio


@pytest.mark.subprocess
def test_pg_variables_and_a_passfile_reach_the_ledger_with_nothing_but_the_scheme_in_the_url(
    pg_ledger: str, tmp_path: Path
) -> None:
    parts = urlsplit(pg_ledger)
    database = parts.path.lstrip("/")
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{parts.hostname}:{parts.port}:{database}:{parts.username}:{parts.password}\n")
    passfile.chmod(0o600)
    env = {"PGHOST": str(parts.hostname), "PGPORT": str(parts.port), "PGUSER": str(parts.username),
           "PGDATABASE": database, "PGPASSFILE": str(passfile), "PLANNER_MCP_LEDGER": "postgresql://"}  # fmt: skip
    called = run_cli(tmp_path / "unused.db", "call", "read_docs", '{"name": "backup-restore"}', **env)
    assert called.returncode == 0, called.stderr
    assert str(parts.password) not in called.stdout + called.stderr
    verified = run_cli(tmp_path / "unused.db", "ledger", "verify", **env)
    assert verified.returncode == 0 and "OK" in verified.stdout, verified.stdout + verified.stderr
    assert verify(pg_ledger).status == "ok" and not (tmp_path / "unused.db").exists()


@pytest.fixture
def tls_cluster(pg_cluster_factory: Callable[..., PostgresCluster]) -> tuple[PostgresCluster, trustme.CA]:
    """A cluster of its own that speaks TLS with a certificate for 127.0.0.1 from a CA the test made."""
    ca = trustme.CA()
    cluster = pg_cluster_factory()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    for name, pem in (("server.crt", issued.cert_chain_pems[0]), ("server.key", issued.private_key_pem)):
        pem.write_to_path(str(cluster.data_dir / name))
        shutil.chown(cluster.data_dir / name, "postgres", "postgres")
        os.chmod(cluster.data_dir / name, 0o600)
    cluster.execute("ALTER SYSTEM SET ssl = on")
    cluster.execute("SELECT pg_reload_conf()")
    return cluster, ca


async def test_verify_full_against_the_databases_own_ca_records_and_any_other_ca_is_refused(
    tls_cluster: tuple[PostgresCluster, trustme.CA], tmp_path: Path
) -> None:
    cluster, ca = tls_cluster
    cluster.create_database("audit")
    url = init_ledger(cluster, "audit")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    trusted = f"{url}?sslmode=verify-full&sslrootcert={tmp_path / 'ca.pem'}"
    _, output = await call_once(Settings(ledger_path=trusted), "read_docs", {"name": "backup-restore"})
    assert output["decision"] == "EXECUTE", output
    assert verify(trusted).status == "ok"

    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other.pem"))
    other = f"{url}?sslmode=verify-full&sslrootcert={tmp_path / 'other.pem'}"
    _, refused = await call_once(Settings(ledger_path=other), "read_docs", {"name": "backup-restore"})
    assert refused["decision"] == "ERROR" and refused["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert "certificate verify failed" in refused["error"]["message"]
    assert refused["data"] is None
