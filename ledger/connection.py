"""Opening the ledger file the one safe way, and the lock that lets several processes share it.

Every process that writes the ledger takes an exclusive lock on `<ledger>.lock` around each transaction,
each open and each close. SQLite's own write lock already serialises writers; this lock also serialises
the checkpoints that commits and closes run, which SQLite releases before 3.51.3 can race against each
other and lose committed rows (the "WAL-reset bug", https://sqlite.org/wal.html#walresetbug). Waiting on
it is bounded by the same busy budget as SQLite's lock.
"""

import errno
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from ledger.errors import LedgerError, Reason

__all__ = ["FileLock", "SqliteConn", "Synchronous", "begin_immediate", "connect"]

Synchronous = Literal["full", "normal"]
_SYNCHRONOUS = {"normal": 1, "full": 2}
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


class SqliteConn(sqlite3.Connection):
    """A SQLite connection with the few questions whose SQL is SQLite's own (see `ledger.storage.Conn`)."""

    unstorable: tuple[type[Exception], ...] = (UnicodeEncodeError,)
    held_version: int | None = None
    """`data_version` as read once in the write transaction in progress, None outside one: while this connection
    holds the write lock no other can commit, so it cannot move (see `SqliteStorage.begin`)."""

    def insert(self, sql: str, parameters: Sequence[Any], not_landed: Callable[[int], Exception], /) -> None:
        cursor = self.execute(sql, parameters)
        if cursor.rowcount != 1:
            raise not_landed(cursor.rowcount)

    def execute_later(self, sql: str, parameters: Sequence[Any] = (), /) -> None:
        self.execute(sql, parameters)  # in process, a statement costs no round trip to save

    def columns(self, table: str) -> set[str]:
        return {row[1] for row in self.execute(f"PRAGMA table_info({table})")}

    def has_table(self, name: str) -> bool:
        found = self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return found is not None

    def data_version(self) -> int | None:
        if self.held_version is not None:
            return self.held_version
        return int(self.execute("PRAGMA data_version").fetchone()[0])


class FileLock:
    """An exclusive `flock` on a file beside the ledger, held for one ledger operation at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, deadline: float) -> None:
        if self._fd is None:
            try:
                # Never through a link: one planted in the ledger's folder would have the server create files elsewhere.
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            except OSError as exc:
                reason: Reason = "read-only" if exc.errno in (errno.EACCES, errno.EROFS) else "unavailable"
                why = "it is a link, which planner-mcp never follows; remove it" if exc.errno == errno.ELOOP else ""
                raise LedgerError(
                    f"cannot open the ledger's lock file {self.path}: {why or exc.strerror}", reason
                ) from exc
        delay = 0.0002
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() + delay > deadline:
                    raise LedgerError(
                        f"the ledger {self.path.with_suffix('')} is busy: another planner-mcp process held it "
                        "for longer than the busy timeout (PLANNER_MCP_LEDGER_BUSY_TIMEOUT)",
                        "locked",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.005)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def connect(path: Path, *, busy_timeout_s: float, synchronous: Synchronous, max_bytes: int | None) -> SqliteConn:
    """Open the ledger in WAL mode at the asked durability, and check that SQLite really gave both.

    The path is made absolute: SQLite builds that take `file:` names as URIs even unasked would read a relative
    `file:audit#1.db` as the file `audit`.
    """
    conn = sqlite3.connect(
        path.absolute(), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False, factory=SqliteConn
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise LedgerError(f"the ledger {path} cannot use WAL (journal_mode is {mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        if conn.execute("PRAGMA synchronous").fetchone()[0] != _SYNCHRONOUS[synchronous]:
            raise LedgerError(f"the ledger {path} refused synchronous={synchronous.upper()}")
        if max_bytes is not None:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            # SQLite keeps the cap at least the current size: a ledger already past it takes no new page.
            conn.execute(f"PRAGMA max_page_count = {max(1, max_bytes // page_size)}")
    except BaseException:
        conn.close()
        raise
    return conn


def begin_immediate(conn: sqlite3.Connection, deadline: float) -> None:
    """Take SQLite's write lock, waiting until `deadline`.

    The busy handler does the waiting; SQLite skips it in a few cases (WAL recovery after a crash, a
    possible deadlock), so a BUSY that comes back early is waited out here rather than shown to a caller.
    """
    delay = 0.001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) not in _BUSY or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
