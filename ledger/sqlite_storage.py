"""The ledger in a SQLite file: WAL, synchronous=FULL, a file lock shared by every process that writes it.

A connection that has seen an I/O error or corruption is closed, and the next one checks the file
(`PRAGMA quick_check`) before anything is recorded again.
"""

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from ledger.connection import FileLock, SqliteConn, Synchronous, begin_immediate, connect
from ledger.errors import LedgerError, from_sqlite
from ledger.migrations import migrate
from ledger.schema import differences, recorded_differences
from ledger.storage import Conn, Difference

__all__ = ["SqliteStorage", "read_only"]

logger = logging.getLogger("ledger.store")


class SqliteStorage:
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)

    def __init__(
        self, path: Path, *, busy_timeout_s: float = 5.0, synchronous: Synchronous = "full",
        max_bytes: int | None = None,
    ) -> None:  # fmt: skip
        self.path = path
        self.where = str(path)
        self._busy_timeout_s = busy_timeout_s
        self._synchronous: Synchronous = synchronous
        self._max_bytes = max_bytes
        self._file_lock = FileLock(path.with_name(path.name + ".lock"))
        self._suspect = False
        self._schema_version: int | None = None
        self._schema_seen: int | None = None
        """The connection's `data_version` when the schema was last found sound."""

    @contextlib.contextmanager
    def guard(self, deadline: float, *, connected: bool) -> Iterator[None]:
        """The file lock around one operation (see `ledger.connection`); the folder is made first if need be."""
        if not connected:
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(f"cannot create the ledger directory {self.path.parent}: {exc.strerror}") from exc
        self._file_lock.acquire(deadline)
        try:
            yield
        finally:
            self._file_lock.release()

    def alive(self, conn: Conn) -> bool:
        return True  # a file has no other end to go away

    def connect(self, deadline: float) -> Conn:
        _create_private(self.path)
        conn = connect(
            self.path, busy_timeout_s=self._busy_timeout_s, synchronous=self._synchronous, max_bytes=self._max_bytes
        )
        if self._suspect:
            try:
                verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            except BaseException:
                conn.close()
                raise
            logger.warning("Reopened the ledger %s after an I/O error: integrity check %s", self.path, verdict)
            if verdict != "ok":
                conn.close()
                raise LedgerError(
                    f"the ledger {self.path} failed its integrity check after an error: {verdict}", "corrupt"
                )
        self._suspect = False
        self._schema_version = self._schema_seen = None
        return conn

    def prepare(self, conn: Conn) -> list[str]:
        return migrate(_sqlite(conn))

    def begin(self, conn: Conn, deadline: float, *, relaxed: bool) -> None:
        if relaxed:
            conn.execute("PRAGMA synchronous = NORMAL")
        raw = _sqlite(conn)
        begin_immediate(raw, deadline)
        # Read once for the whole transaction, by the schema's check and by each append's (see `Tail`).
        raw.held_version = None
        raw.held_version = raw.data_version()

    def end(self, conn: Conn, *, commit: bool, relaxed: bool) -> None:
        _sqlite(conn).held_version = None
        conn.execute("COMMIT" if commit else "ROLLBACK")
        if relaxed:
            conn.execute("PRAGMA synchronous = FULL")

    def savepoint(self, conn: Conn) -> None:
        # Never released: each savepoint nests in the last, and the COMMIT ends them all (a statement fewer each).
        conn.execute("SAVEPOINT write")

    def rollback_to(self, conn: Conn) -> None:
        conn.execute("ROLLBACK TO write")  # the newest savepoint of that name: this write's

    def schema_changed(self, conn: Conn) -> bool:
        """Whether SQLite's schema cookie moved since the schema was last found sound: any change to the schema,
        by any connection, moves it, so a trigger added while the server runs is caught at the next write.

        The cookie is read only when another connection has committed since it was (`data_version` moved): a
        change to the schema is a commit like any other, and this connection makes none after its open.
        """
        version = conn.data_version()
        if version is not None and version == self._schema_seen:
            return False
        if conn.execute("PRAGMA schema_version").fetchone()[0] != self._schema_version:
            return True
        self._schema_seen = version
        return False

    def differences(self, conn: Conn) -> list[Difference]:
        found = differences(_sqlite(conn))
        if not found:
            self._schema_version = conn.execute("PRAGMA schema_version").fetchone()[0]
            self._schema_seen = conn.data_version()
        return found

    def failed(self, exc: BaseException) -> LedgerError:
        """The error for `exc`; after an I/O error or corruption, the next connection checks the file first.

        SQLite reports a write to a file that may no longer be written (made immutable, its file system remounted
        read-only) as an I/O error: that cause is named instead.
        """
        error = from_sqlite(self.path, cast(sqlite3.Error, exc))
        self._suspect = self._suspect or error.reason in ("io", "corrupt")
        if error.reason != "io":
            return error
        for file in (self.path, self.path.with_name(self.path.name + "-wal")):
            if file.exists() and not os.access(file, os.W_OK):
                return LedgerError(f"the ledger {self.path} is read-only: {file.name} cannot be written ({exc})",
                                   "read-only")  # fmt: skip
        return error

    def discard(self, conn: Conn) -> None:
        raw = _sqlite(conn)
        try:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite may already have rolled back (FULL, IOERR, BUSY); the original error is what matters.
        finally:
            raw.close()

    def close(self) -> None:
        self._file_lock.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Conn]:
        with read_only(self.path) as conn:
            yield conn

    def recorded_differences(self, conn: Conn) -> list[Difference]:
        return recorded_differences(_sqlite(conn))

    def integrity(self, conn: Conn) -> list[str]:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
        return [] if problems == ["ok"] else problems


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[SqliteConn]:
    """A read-only connection holding one snapshot: rows appended meanwhile are not part of what is read.

    The file is named by a URI built from the whole path, percent-encoded: a `#` or `?` in a name pasted into
    `file:{path}` would cut it, and SQLite would open (and create, read-write) another file.
    """
    if not path.is_file():
        raise LedgerError(f"there is no ledger at {path} (PLANNER_MCP_LEDGER)")
    try:
        conn = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None, factory=SqliteConn
        )
    except sqlite3.Error as exc:
        raise from_sqlite(path, exc) from exc
    try:
        conn.execute("BEGIN")
        yield conn
    except sqlite3.Error as exc:
        raise from_sqlite(path, exc) from exc
    finally:
        conn.close()


def _sqlite(conn: Conn) -> SqliteConn:
    return cast(SqliteConn, conn)


def _create_private(path: Path) -> None:
    """Create the ledger file readable by its owner only (SQLite gives its WAL and shared-memory files the
    same mode); a file that exists is left as it is. When it cannot be created, opening it says why."""
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
