"""PostgreSQL started the one way the tests start it: a throwaway cluster in a temporary folder.

The ledger's PostgreSQL tests need a real server they own: one they can stop, restart, kill and starve of disk
without touching anything else on the machine. A `PostgresCluster` is `initdb` and `pg_ctl` in a folder of its
own, listening on 127.0.0.1 only (a free port, its Unix socket inside the folder), password authentication
(scram-sha-256) for everyone, and PostgreSQL's default durability (fsync and synchronous_commit on), since the
benchmark measures appends with them. PostgreSQL refuses to run as root, so when the tests do, every command runs
as the unprivileged user `postgres`. Every wait is bounded, an error names what failed with the end of the
server's log, and closing stops the server and removes the folder whatever happened before.

psycopg is imported only where a connection is made, so this module imports (and its users skip with a
message) where the `postgres` extra is not installed.
"""

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import quote

import pytest

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

__all__ = ["PG_TIMEOUT_S", "SUPERUSER", "PostgresCluster"]

PG_TIMEOUT_S = 30
"""How long `pg_ctl` may wait for the server to start or stop (initdb and the commands get a little more)."""

SUPERUSER = "postgres"
"""The cluster's superuser role, whatever the OS user running it."""

_OS_USER = "postgres"
_BINARIES = ("initdb", "pg_ctl", "postgres")
_PACKAGED = Path("/usr/lib/postgresql")
_LOG_TAIL_LINES = 30


class PostgresCluster:
    """A PostgreSQL server of its own, initialised and started on construction; `close()` (or leaving the `with`
    block) stops it and removes its folder. `data_dir` puts the data folder elsewhere (a small tmpfs, to run it
    out of disk); its write-ahead log then stays in the temporary folder, so a full data disk fails the writes
    that extend tables, not the server. `settings` are added to postgresql.conf (`max_connections`, ...)."""

    def __init__(self, *, data_dir: Path | None = None, settings: Mapping[str, str] | None = None) -> None:
        _require_psycopg()
        self._bin = _binaries()
        self._run_as = _run_as_prefix()
        self.root = Path(tempfile.mkdtemp(prefix="planner-pg-"))
        self.data_dir = data_dir or self.root / "data"
        self.password = secrets.token_urlsafe(18)
        self.port = _free_port()
        self._log = self.root / "postgres.log"
        try:
            self._initdb(external_data=data_dir is not None)
            self._configure(settings or {})
            self.start()
        except BaseException:
            self.close()
            raise

    # --- connecting -------------------------------------------------------------------------------------------

    def url(self, user: str, password: str, dbname: str = "postgres") -> str:
        """A `postgresql://` URL to this cluster over TCP on 127.0.0.1, every part percent-encoded."""
        parts = (quote(user, safe=""), quote(password, safe=""), self.port, quote(dbname, safe=""))
        return "postgresql://{}:{}@127.0.0.1:{}/{}".format(*parts)

    def superuser_url(self, dbname: str = "postgres") -> str:
        return self.url(SUPERUSER, self.password, dbname)

    def execute(
        self, query: "str | sql.SQL | sql.Composed", params: Sequence[Any] | None = None, *, dbname: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        """Run one statement as the superuser (autocommit) on a connection of its own; the rows it returns."""
        with self.connect(dbname) as conn, conn.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def connect(self, dbname: str = "postgres") -> "psycopg.Connection[tuple[Any, ...]]":
        """A superuser connection (autocommit) to `dbname`, for a test that must hold one open."""
        import psycopg

        return psycopg.connect(self.superuser_url(dbname), autocommit=True, connect_timeout=PG_TIMEOUT_S)

    # --- objects ----------------------------------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """A fresh, empty database; the superuser's URL to it."""
        from psycopg import sql

        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.superuser_url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        from psycopg import sql

        self.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def create_role(self, name: str, password: str, *, login: bool = True, in_roles: Iterable[str] = ()) -> None:
        """A role with a password, member of `in_roles`; no other attribute (not a superuser, no CREATEDB)."""
        from psycopg import sql

        statement = sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
            sql.Identifier(name), sql.SQL("LOGIN" if login else "NOLOGIN"), sql.Literal(password)
        )
        roles = list(in_roles)
        if roles:
            statement += sql.SQL(" IN ROLE {}").format(sql.SQL(", ").join(map(sql.Identifier, roles)))
        self.execute(statement)

    # --- the server -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server and wait (bounded) until it accepts connections."""
        self._pg_ctl("start", "-l", str(self._log))

    def stop(self, mode: Literal["fast", "immediate", "smart"] = "fast") -> None:
        """Stop the server: `fast` ends sessions and checkpoints; `immediate` is a crash (recovery on start)."""
        self._pg_ctl("stop", "-m", mode)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._postmaster_pid() is not None

    @property
    def pid(self) -> int:
        """The postmaster's process id (it changes on every start)."""
        pid = self._postmaster_pid()
        if pid is None:
            raise RuntimeError(f"PostgreSQL in {self.data_dir} is not running")
        return pid

    def log_text(self) -> str:
        """The server's log so far (its stderr)."""
        return self._log.read_text(encoding="utf-8", errors="replace") if self._log.exists() else ""

    def close(self) -> None:
        """Stop the server if it runs (killing it if pg_ctl cannot) and remove its folders; safe to repeat."""
        try:
            if self._postmaster_pid() is not None:
                self._halt()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- how ----------------------------------------------------------------------------------------------------

    def _initdb(self, *, external_data: bool) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        folders = [self.root, pwfile]
        if external_data:
            self.data_dir.mkdir(mode=0o700)
            folders.append(self.data_dir)
        for path in folders:
            self._own(path)
        wal = ["--waldir", str(self.root / "wal")] if external_data else []
        self._run(
            [self._bin["initdb"], "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=scram-sha-256",
             f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions", *wal],
            what="initdb",
            timeout_s=2 * PG_TIMEOUT_S,
        )  # fmt: skip
        pwfile.unlink()

    def _configure(self, settings: Mapping[str, str]) -> None:
        ours = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "fsync": "on",
            "synchronous_commit": "on",
            "log_destination": "stderr",
            "logging_collector": "off",
            **settings,
        }
        lines = [f"{name} = {_quoted(value)}" for name, value in ours.items()]
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# planner-mcp tests\n" + "\n".join(lines) + "\n")

    def _pg_ctl(self, action: str, *args: str) -> None:
        command = [self._bin["pg_ctl"], action, "-D", str(self.data_dir), "-w", "-t", str(PG_TIMEOUT_S), "-s", *args]
        self._run(command, what=f"pg_ctl {action}", timeout_s=PG_TIMEOUT_S + 10)

    def _run(self, command: list[str], *, what: str, timeout_s: float) -> None:
        try:
            done = subprocess.run(
                [*self._run_as, *command], capture_output=True, text=True, timeout=timeout_s, cwd=self.root
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{what} did not finish within {timeout_s}s{self._log_tail()}") from None
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()
            raise RuntimeError(f"{what} failed (exit {done.returncode}): {output}{self._log_tail()}")

    def _log_tail(self) -> str:
        lines = self.log_text().splitlines()[-_LOG_TAIL_LINES:]
        return "\n--- end of the PostgreSQL log ---\n" + "\n".join(lines) if lines else ""

    def _postmaster_pid(self) -> int | None:
        """The pid in postmaster.pid, if that process is alive (a crash can leave a stale file)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _halt(self) -> None:
        """Stop at once; if pg_ctl cannot, kill the postmaster (its backends exit when it is gone)."""
        pid = self._postmaster_pid()
        try:
            self._pg_ctl("stop", "-m", "immediate")
        except RuntimeError:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            raise

    def _own(self, path: Path) -> None:
        if self._run_as:
            user = pwd.getpwnam(_OS_USER)
            os.chown(path, user.pw_uid, user.pw_gid)


def _require_psycopg() -> None:
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: install the postgres extra (`pip install -e '.[postgres]'`)")


def _binaries() -> dict[str, str]:
    """initdb, pg_ctl and postgres from PATH, else from the newest /usr/lib/postgresql/*/bin; skip if missing."""
    found = {name: shutil.which(name) for name in _BINARIES}
    if all(found.values()):
        return {name: str(path) for name, path in found.items()}
    for folder in sorted(_PACKAGED.glob("*/bin"), key=_version, reverse=True):
        if all((folder / name).is_file() for name in _BINARIES):
            return {name: str(folder / name) for name in _BINARIES}
    missing = ", ".join(name for name, path in found.items() if path is None)
    pytest.skip(
        f"PostgreSQL is not installed: {missing} not found on PATH nor in {_PACKAGED}/*/bin;"
        " install it (`apt-get install postgresql`) or put its bin folder on PATH"
    )


def _version(bin_folder: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin -> (15,); 9.6 -> (9, 6); a folder not named by a version sorts first."""
    try:
        return tuple(int(part) for part in bin_folder.parent.name.split("."))
    except ValueError:
        return ()


def _run_as_prefix() -> list[str]:
    """Nothing when not root; else a command prefix that runs as `postgres` (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(_OS_USER)
    except KeyError:
        pytest.skip(
            f"the tests run as root and there is no `{_OS_USER}` user to run PostgreSQL as (it refuses root);"
            " `apt-get install postgresql` creates it"
        )
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={_OS_USER}", f"--regid={_OS_USER}", "--init-groups", "--"]
    return ["runuser", "-u", _OS_USER, "--"]


def _alive(pid: int) -> bool:
    """Whether a process runs: a killed postmaster lingers as a zombie until init reaps it, which `kill(pid, 0)`
    would count as alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _quoted(value: str) -> str:
    """A postgresql.conf string value."""
    return "'" + value.replace("'", "''") + "'"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
