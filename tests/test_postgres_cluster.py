"""The PostgreSQL the tests start themselves: on loopback, behind a password, durable across restarts, gone when
closed, and able to run out of disk without going down (tests/postgres_cluster.py, tests/small_disk.py)."""

from collections.abc import Callable

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

import psycopg

from tests.postgres_cluster import PostgresCluster
from tests.small_disk import free_bytes, full_disk


def test_the_superuser_connects_over_tcp_on_loopback_with_default_durability(pg_cluster: PostgresCluster) -> None:
    rows = pg_cluster.execute(
        "SELECT host(inet_server_addr()), inet_server_port(), current_user, current_setting('fsync'),"
        " current_setting('synchronous_commit'), current_setting('listen_addresses')"
    )
    assert rows == [("127.0.0.1", pg_cluster.port, "postgres", "on", "on", "127.0.0.1")]


def test_a_wrong_password_is_refused(pg_cluster: PostgresCluster) -> None:
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "postgres"'):
        psycopg.connect(pg_cluster.url("postgres", pg_cluster.password + "x"), connect_timeout=10).close()


def test_a_role_logs_in_with_its_own_password_and_holds_no_other_power(pg_cluster: PostgresCluster) -> None:
    pg_cluster.execute("CREATE ROLE ledger_readers NOLOGIN")
    pg_cluster.create_role("a writer", "p@ss:w/rd %ü", in_roles=["ledger_readers"])
    with psycopg.connect(pg_cluster.url("a writer", "p@ss:w/rd %ü"), connect_timeout=10) as conn:
        powers = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, pg_has_role('ledger_readers', 'MEMBER')"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchall()
    assert powers == [(False, False, False, True)]


def test_each_test_gets_a_fresh_empty_database_of_its_own(pg_cluster: PostgresCluster, pg_database: str) -> None:
    with psycopg.connect(pg_database, connect_timeout=10) as conn:
        name, tables = conn.execute(
            "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')"
        ).fetchone() or ("", -1)
    assert name.startswith("test_")
    assert tables == 0
    assert pg_database == pg_cluster.superuser_url(name)


def test_committed_rows_survive_a_restart_and_a_crash(pg_cluster_factory: Callable[..., PostgresCluster]) -> None:
    cluster = pg_cluster_factory()
    cluster.execute("CREATE TABLE kept (n int)")
    cluster.execute("INSERT INTO kept VALUES (1)")
    first = cluster.pid
    cluster.restart()
    cluster.execute("INSERT INTO kept VALUES (2)")
    cluster.stop("immediate")  # as if the machine lost power: only what reached the WAL comes back
    cluster.start()
    assert cluster.execute("SELECT n FROM kept ORDER BY n") == [(1,), (2,)]
    assert cluster.pid != first
    assert "database system was interrupted" in cluster.log_text()


def test_a_stopped_cluster_refuses_connections_until_it_starts_again(
    pg_cluster_factory: Callable[..., PostgresCluster],
) -> None:
    cluster = pg_cluster_factory()
    cluster.stop()
    assert not cluster.running
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        cluster.execute("SELECT 1")
    cluster.start()
    assert cluster.execute("SELECT 1") == [(1,)]


def test_closing_a_cluster_stops_it_and_removes_its_folder_even_after_a_failure() -> None:
    with pytest.raises(ZeroDivisionError), PostgresCluster() as cluster:
        1 / 0  # noqa: B018  # a test failing while its cluster runs
    assert not cluster.running
    assert not cluster.root.exists()
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        psycopg.connect(cluster.superuser_url(), connect_timeout=10).close()


def test_a_cluster_that_cannot_start_says_why_with_the_end_of_its_log(pg_cluster: PostgresCluster) -> None:
    with pytest.raises(RuntimeError, match=r"pg_ctl start failed") as failure:
        PostgresCluster(settings={"port": str(pg_cluster.port)})  # the port the shared cluster holds
    assert "--- end of the PostgreSQL log ---" in str(failure.value)
    assert "Address already in use" in str(failure.value)
    assert pg_cluster.execute("SELECT 1") == [(1,)]


def test_an_insert_on_a_full_disk_fails_with_disk_full_while_the_server_stays_up_and_succeeds_once_freed(
    pg_cluster_factory: Callable[..., PostgresCluster],
) -> None:
    cluster = pg_cluster_factory(disk_mb=64)
    disk = cluster.data_dir.parent
    with cluster.connect() as conn:  # opened first: a new session may have to write its relation cache file
        conn.execute("CREATE TABLE t (body text)")  # empty: its first row must extend the file
        pid = cluster.pid
        with full_disk(disk):
            assert free_bytes(disk) == 0
            with pytest.raises(psycopg.errors.DiskFull) as refused:
                conn.execute("INSERT INTO t VALUES ('row')")
            assert refused.value.sqlstate == "53100"
            assert conn.execute("SELECT 1").fetchall() == [(1,)]
            assert cluster.pid == pid
        conn.execute("INSERT INTO t VALUES ('row')")
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    assert cluster.pid == pid
