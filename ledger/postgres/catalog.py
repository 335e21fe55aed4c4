"""What a PostgreSQL ledger's schema says against the one `schema.sql` makes, read from the catalog.

An owner of the tables (or a superuser) can do what the chain cannot show: drop or disable an append-only
trigger, give it a `WHEN (false)`, replace its function's body, add a rule that turns inserts into nothing,
hide rows behind row-level security, make a table unlogged so a crash empties it, or change a column's type.
Each object in the ledger's schema is described by facts that do not depend on PostgreSQL's version (a
column's type name, a trigger's timing and events, a function's source) and compared with `EXPECTED`; the
server refuses a ledger that differs, and `verify` names each difference. A trigger is described with a digest of
the function it calls, so a function whose body is replaced changes every trigger that calls it: each append-only
trigger it empties is named `unprotected`, as one dropped would be. `EXPECTED` (`expected_schema.json`)
is what a fresh `schema.sql` gives: a test applies it and compares, and rewrites the file when asked to
(`PLANNER_MCP_UPDATE_SNAPSHOT=1`) after a deliberate change to the schema.
"""

import json
from pathlib import Path
from typing import Any

from ledger.chain import TABLES
from ledger.errors import LedgerError
from ledger.storage import Conn, Difference

__all__ = [
    "EXPECTED",
    "EXPECTED_FILE",
    "SCHEMA",
    "WRITER_NEEDS",
    "describe",
    "differences",
    "lacking",
    "require_privileges",
]

SCHEMA = "planner_mcp"

_Objects = dict[str, str]  # "kind name": its description

_QUERIES: dict[str, str] = {
    "relation": """
        SELECT c.relname,
               c.relkind::text || ' persistence=' || c.relpersistence::text || ' rls=' || c.relrowsecurity::text
               || CASE WHEN c.relforcerowsecurity THEN ' forced' ELSE '' END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ? AND c.relkind NOT IN ('i', 'I')""",
    "inheritance": """
        SELECT p.relname || ' > ' || c.relname, pn.nspname || '.' || p.relname || ' is inherited by ' || cn.nspname
               || '.' || c.relname
        FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
        JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
        WHERE ? IN (pn.nspname, cn.nspname)""",
    "column": """
        SELECT c.relname || '.' || a.attname::text, format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
               || coalesce(' collate ' || NULLIF(co.collname, 'default'), '')
               || CASE WHEN a.attidentity = '' THEN '' ELSE ' identity=' || a.attidentity::text END
               || CASE WHEN a.attgenerated = '' THEN '' ELSE ' generated=' || a.attgenerated::text END
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE n.nspname = ? AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped""",
    "index": """
        SELECT i.relname, t.relname || CASE WHEN x.indisunique THEN ' unique' ELSE '' END
               || ' (' || array_to_string(ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
                                              FROM generate_series(1, x.indnatts) k), ', ') || ')'
               || CASE WHEN x.indpred IS NULL THEN '' ELSE ' partial' END
               || CASE WHEN x.indisvalid THEN '' ELSE ' invalid' END
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = ?""",
    "constraint": """
        SELECT o.conname, c.relname || ' ' || pg_get_constraintdef(o.oid)
        FROM pg_constraint o JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ?""",
    "trigger": """
        SELECT t.tgname, c.relname || ' type=' || t.tgtype::text || ' enabled=' || t.tgenabled::text
               || ' calls=' || pn.nspname || '.' || p.proname || ' args=' || t.tgnargs::text
               || CASE WHEN t.tgattr::text = '' THEN '' ELSE ' columns=' || t.tgattr::text END
               || CASE WHEN t.tgqual IS NULL THEN '' ELSE ' when=' || pg_get_triggerdef(t.oid) END
               || ' body=' || left(encode(sha256(convert_to(l.lanname || ' ' || p.prosecdef::text || ' '
                                  || coalesce(p.proconfig::text, '') || ' ' || p.prosrc, 'UTF8')), 'hex'), 16)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = ? AND NOT t.tgisinternal""",
    "function": """
        SELECT p.proname, l.lanname || ' definer=' || p.prosecdef::text || ' config=' || coalesce(p.proconfig::text, '')
               || ' source=' || p.prosrc
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = ?""",
    "rule": "SELECT rulename, tablename || ': ' || definition FROM pg_rules WHERE schemaname = ?",
    "policy": "SELECT policyname, tablename || ' ' || cmd FROM pg_policies WHERE schemaname = ?",
}


def describe(conn: Conn, schema: str = SCHEMA) -> _Objects:
    """Every object in the ledger's schema, by kind and name, with the facts compared."""
    found: dict[str, list[str]] = {}
    for kind, query in _QUERIES.items():
        for name, facts in conn.execute(query, (schema,)).fetchall():
            found.setdefault(f"{kind} {name}", []).append(" ".join(str(facts).split()))
    # Trigger, rule, policy and constraint names are unique per table only: a second object under an expected
    # name (on another table) shows as a change to it, never hidden behind it.
    return {key: " | ".join(sorted(all_facts)) for key, all_facts in found.items()}


def differences(conn: Conn, schema: str = SCHEMA) -> list[Difference]:
    """Each object missing, added or changed against `EXPECTED`, named as SQLite's schema check names them."""
    found = describe(conn, schema)
    problems = []
    for key, facts in found.items():
        kind, _, name = key.partition(" ")
        if key not in EXPECTED:
            problems.append(Difference(name, f"{kind} {name} is not the ledger's: {_shown(facts)}"))
        elif facts != EXPECTED[key]:
            problems.append(Difference(name, f"{kind} {name} was changed: it reads {_shown(facts)}"))
    for key in EXPECTED.keys() - found.keys():
        kind, _, name = key.partition(" ")
        problems.append(Difference(name, f"{kind} {name} was removed"))
    return sorted(problems)


WRITER_NEEDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(TABLES, ("SELECT", "INSERT")),
    "agent_metrics": ("SELECT", "INSERT", "UPDATE"),
}
"""What a server's role needs on each table to record calls (schema.sql grants planner_mcp_writer this)."""
_WRITES = [(table, p) for p in ("SELECT", "INSERT", "UPDATE") for table, needs in WRITER_NEEDS.items() if p in needs]
_READS = [(table, p) for table, p in _WRITES if p == "SELECT"]
_PRIVILEGE = """
    SELECT has_table_privilege(c.oid, ?) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ? AND c.relname = ?"""


def lacking(conn: Conn, *, write: bool, schema: str = SCHEMA) -> list[str]:
    """Each privilege the connected role needs on the ledger and lacks: to read it (`verify`, `tail`), or with
    `write`, to append to it as a server does. Read from the catalog, which every role may read, because a role
    without USAGE on the schema is told by PostgreSQL that its tables do not exist (it drops the schema from
    its search_path unseen), and `information_schema` hides the tables a role may not touch."""
    found = conn.execute("SELECT has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = ?",
                         (schema,)).fetchone()  # fmt: skip
    if found is None:
        return []  # no ledger here at all: said as such by whoever asked
    missing = [] if found[0] else [f"USAGE on schema {schema}"]
    for table, privilege in _WRITES if write else _READS:
        row = conn.execute(_PRIVILEGE, (privilege, schema, table)).fetchone()
        if row is not None and not row[0]:
            missing.append(f"{privilege} on {table}")
    return missing


def require_privileges(conn: Conn, where: str, *, write: bool) -> None:
    """Refuse (`LedgerError`, reason `denied`) a role that lacks a privilege it needs, naming each one, before
    anything is read: rather than the misleading "no ledger" PostgreSQL would lead to."""
    if missing := lacking(conn, write=write):
        role = "planner_mcp_writer" if write else "planner_mcp_reader (or planner_mcp_writer)"
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise LedgerError(f"the ledger {where} refused this role privileges it needs: {shown} (grant it {role})",
                          "denied")  # fmt: skip


def _shown(facts: Any, limit: int = 200) -> str:
    text = str(facts)
    return text if len(text) <= limit else text[:limit] + "..."


EXPECTED_FILE = Path(__file__).with_name("expected_schema.json")
EXPECTED: _Objects = json.loads(EXPECTED_FILE.read_text(encoding="utf-8"))
