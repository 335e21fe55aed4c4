"""The doctor's view of a ledger on PostgreSQL: can this role reach it, may it change what it records, is the
connection protected and are commits durable, is the schema the ledger's, is the chain's head intact.

Least privilege is checked in the database, not assumed: a role that could UPDATE, DELETE or TRUNCATE ledger
rows (granted so, or owning the tables, or a superuser, which can drop the triggers that refuse it) fails, as
does one that lacks what a server needs to record. Read-only, like every doctor check: one read-only
transaction that reads the catalog and the chain's head.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ledger import LedgerError
from ledger.append import check_head
from ledger.chain import TABLES, Hasher
from ledger.engines import locate
from ledger.postgres.catalog import SCHEMA, WRITER_NEEDS
from ledger.storage import Conn, Storage
from server.config.ledger import ledger_key
from server.config.settings import Settings, SettingsError
from server.doctor.check import Check

if TYPE_CHECKING:
    from ledger.postgres.storage import PostgresStorage

__all__ = ["postgres_checks", "tls_check"]

_CHANGES = ("UPDATE", "DELETE", "TRUNCATE")
_PRIVILEGES = """
    SELECT c.relname, has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
           has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'),
           has_table_privilege(c.oid, 'TRUNCATE'), pg_has_role(c.relowner, 'MEMBER')
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ? AND c.relkind IN ('r', 'p')
"""
_ROLE = """
    SELECT r.rolname, r.rolsuper,
           coalesce(string_agg(g.rolname, ', ' ORDER BY g.rolname), '')
    FROM pg_roles r LEFT JOIN pg_auth_members m ON m.member = r.oid LEFT JOIN pg_roles g ON g.oid = m.roleid
    WHERE r.rolname = current_user GROUP BY r.rolname, r.rolsuper
"""
_FIX_CHANGE = (
    "Connect the servers as a login role that is only a member of planner_mcp_writer (CREATE ROLE planner LOGIN "
    "PASSWORD '...' IN ROLE planner_mcp_writer); keep the owner for `planner-mcp ledger init`."
)


@dataclass(frozen=True)
class _Session:
    role: str
    superuser: bool
    member_of: str
    privileges: dict[str, set[str]]
    """Per table of the ledger's schema: what this role may do to it (`OWNER` when it owns it)."""
    schema_usage: bool
    host: str
    sslmode: str
    tls: str | None
    synchronous_commit: str
    """As the ledger's own connection has it (the ledger may set it), and as the role's sessions start with it."""
    default_synchronous_commit: str


def postgres_checks(settings: Settings, url: str) -> Iterator[Check]:
    try:
        key = ledger_key(settings)
    except SettingsError as exc:
        yield Check("ledger.key", "fail", str(exc), "Fix PLANNER_MCP_LEDGER_KEY_FILE.")
        return
    try:
        storage = locate(url, busy_timeout_s=settings.ledger_busy_timeout_s, synchronous=settings.ledger_sync)
    except (ImportError, LedgerError) as exc:  # the driver, an extra, cannot be loaded
        said = (
            str(exc)
            if isinstance(exc, LedgerError)
            else "PLANNER_MCP_LEDGER is a PostgreSQL URL, but psycopg is not installed"
        )
        yield Check("ledger", "fail", said, "pip install 'planner-mcp[postgres]'")
        return
    checks: list[Check] = []
    try:
        # Not the checked snapshot every reader takes: the role's privileges are what is reported here, in full.
        with cast("PostgresStorage", storage).snapshot(privileges=False) as conn:
            session = _session(conn)
            checks += _privilege_checks(session)
            checks += [tls_check(session.host, session.sslmode, session.tls), _durability(session)]
            checks.append(_chain(storage, conn, key))
    except LedgerError as exc:
        fix = "Run `planner-mcp ledger verify` to see what changed." if exc.reason == "tampered" else ""
        checks.append(Check("ledger", "fail", str(exc), fix or "Fix the database, or PLANNER_MCP_LEDGER."))
    yield from checks


def _session(conn: Conn) -> _Session:
    from ledger.postgres.storage import PostgresConn

    raw = conn.raw if isinstance(conn, PostgresConn) else None
    assert raw is not None, "a PostgreSQL ledger's connection"
    role, superuser, member_of = conn.execute(_ROLE).fetchone()
    privileges = {}
    for table, *flags, owner in conn.execute(_PRIVILEGES, (SCHEMA,)).fetchall():
        names = ("SELECT", "INSERT", *_CHANGES)
        privileges[str(table)] = {n for n, f in zip(names, flags, strict=True) if f} | ({"OWNER"} if owner else set())
    (usage,) = conn.execute("SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = ?",
                            (SCHEMA,)).fetchone() or (False,)  # fmt: skip
    tls = conn.execute("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl").fetchone()
    synchronous_commit, default = conn.execute(
        "SELECT setting, reset_val FROM pg_settings WHERE name = 'synchronous_commit'"
    ).fetchone()
    return _Session(
        role=str(role), superuser=bool(superuser), member_of=str(member_of), privileges=privileges,
        schema_usage=bool(usage),
        host=str(raw.info.host), sslmode=str(raw.info.get_parameters().get("sslmode", "prefer")),
        tls=None if tls is None else str(tls[0]), synchronous_commit=str(synchronous_commit),
        default_synchronous_commit=str(default),
    )  # fmt: skip


def _privilege_checks(session: _Session) -> list[Check]:
    """What the role may do to each table of the ledger: fail when it could change a chained row, or when it
    lacks what a server needs to record a call. (No tables: the ledger check says there is no ledger.)"""
    found = session.privileges
    if not found:
        return []
    who = f"role {session.role}" + (" (a superuser)" if session.superuser else "")
    who += f", member of {session.member_of}" if session.member_of else ""
    shown = "; ".join(f"{table}: {', '.join(_ordered(found.get(table, set()))) or 'nothing'}" for table in WRITER_NEEDS)
    checks = []
    above = {*_CHANGES, "OWNER"}
    extra = {"SUPERUSER"} if session.superuser else set()
    changing = {table: _ordered((found.get(table, set()) & above) | extra) for table in TABLES}
    if able := {table: what for table, what in changing.items() if what}:
        listed = "; ".join(f"{', '.join(what)} on {table}" for table, what in able.items())
        checks.append(Check("ledger.role", "fail", f"{who} could change or remove ledger rows ({listed})", _FIX_CHANGE))
    lacking = {f"schema {SCHEMA}": [] if session.schema_usage else ["USAGE"]}
    lacking |= {table: [p for p in needs if p not in found.get(table, set())] for table, needs in WRITER_NEEDS.items()}
    if missing := {table: what for table, what in lacking.items() if what}:
        listed = "; ".join(f"{', '.join(what)} on {table}" for table, what in missing.items())
        checks.append(Check("ledger.role", "fail", f"{who} lacks what a server needs to record calls ({listed})",
                            f"GRANT planner_mcp_writer TO {session.role};"))  # fmt: skip
    if not checks:
        checks.append(Check("ledger.role", "ok", f"{who}: {shown}; no UPDATE, DELETE or TRUNCATE on chained rows"))
    return checks


def _ordered(privileges: set[str]) -> list[str]:
    order = ("SELECT", "INSERT", *_CHANGES, "OWNER", "SUPERUSER")
    return [name for name in order if name in privileges]


def tls_check(host: str, sslmode: str, tls: str | None) -> Check:
    """TLS as the session uses it: a host that is not this machine must be reached with `verify-full`, the one
    mode in which libpq checks both the server's certificate and its name; anything less can be intercepted."""
    from ledger.postgres.urls import is_loopback

    using = f"TLS ({tls})" if tls else "no TLS"
    if is_loopback(f"host={host}"):
        return Check("ledger.tls", "ok", f"{host} is this machine: {using}, sslmode={sslmode}")
    if sslmode == "verify-full" and tls:
        return Check("ledger.tls", "ok", f"{host}: {using}, certificate and host name verified (sslmode=verify-full)")
    said = "is not encrypted" if not tls else "is encrypted, but the server's certificate or name is not verified"
    return Check(
        "ledger.tls", "warn", f"the connection to {host} {said} ({using}, sslmode={sslmode})",
        "Add sslmode=verify-full and sslrootcert=<the CA's certificate> to the URL (or set PGSSLMODE, PGSSLROOTCERT).",
    )  # fmt: skip


def _durability(session: _Session) -> Check:
    """Whether a commit waits for the disk: on the ledger's own connection (a call the server acknowledged), and
    by default for the role (what anything else connecting as it writes)."""
    fix = f"ALTER ROLE {session.role} RESET synchronous_commit; and keep it on in postgresql.conf."
    if session.synchronous_commit == "off":
        return Check(
            "ledger.durability", "warn",
            f"synchronous_commit is off for role {session.role}: a call the server acknowledged can be lost if "
            "PostgreSQL crashes",
            fix + " (PLANNER_MCP_LEDGER_SYNC=normal turns it off too.)",
        )  # fmt: skip
    if session.default_synchronous_commit == "off":
        return Check(
            "ledger.durability", "warn",
            f"synchronous_commit is off by default for role {session.role}: the ledger's commits turn it on, but "
            "anything else connecting as this role does not wait for the disk",
            fix,
        )  # fmt: skip
    return Check("ledger.durability", "ok", f"synchronous_commit={session.synchronous_commit}")


def _chain(storage: Storage, conn: Conn, key: bytes | None) -> Check:
    if found := storage.recorded_differences(conn):
        raise LedgerError(
            f"the schema of {storage.where} is not the one planner-mcp made: {found[0].problem}", "tampered"
        )
    at = check_head(conn, Hasher(key), storage.where)
    keyed = "keyed (HMAC-SHA256)" if key else "unkeyed (SHA-256; set PLANNER_MCP_LEDGER_KEY_FILE to key it)"
    return Check("ledger", "ok", f"{storage.where}: chain head at seq {at.seq} intact, {keyed}")
