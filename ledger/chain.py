"""The hash chain over every recorded row: its canonical encoding (version 1) and the link between rows.

Version 1 is a contract: changing it changes every hash, so a new encoding gets a new version tag and v1
stays readable forever. A row's hash is `v1:<alg>:<hex>` over

    b"planner-mcp-ledger/v1\\0" + canonical JSON {"prev": <previous row's hash>, "row": {...}, "table": <name>}

where `row` holds the table's v1 columns (its id and sequence number included) with SQLite's types applied,
and canonical JSON is sorted keys, no whitespace, UTF-8. `alg` is `sha256`, which anyone can recompute, or
`hmac-sha256`, keyed with a secret kept outside the database, so write access to the file alone is not
enough to forge a row or recompute the chain.
"""

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["COLUMNS", "GENESIS", "TABLES", "Hasher", "algorithm", "canonical", "storage_problems", "typed"]

GENESIS = "genesis"
"""The `prev_hash` of the first row (seq 1)."""

_TAG = b"planner-mcp-ledger/v1\0"
_VERSION = "v1"

# The hashed columns of each chained table, with their SQLite type: 'i' integer, 'r' real, 't' text.
# Append-only like the migrations: a column added later is hashed only by a later version.
COLUMNS: dict[str, dict[str, str]] = {
    "call_intents": {
        "id": "i", "seq": "i", "timestamp": "t", "request_id": "t", "client_request_id": "t", "agent_id": "t",
        "agent_version": "t", "tier": "i", "action": "t", "arguments": "t", "tools_digest": "t", "notes": "t",
    },
    "agent_actions": {
        "id": "i", "seq": "i", "timestamp": "t", "agent_id": "t", "agent_version": "t", "tier": "i", "action": "t",
        "decision": "t", "confidence": "r", "success": "i", "error_type": "t", "error_message": "t",
        "request_id": "t", "client_request_id": "t", "intent_id": "i", "refused": "i", "duration_ms": "r",
        "arguments": "t", "output_digest": "t", "llm_model": "t", "prompt_tokens": "i", "completion_tokens": "i",
        "tools_digest": "t", "notes": "t",
    },
    "ledger_events": {"id": "i", "seq": "i", "timestamp": "t", "kind": "t", "detail": "t"},
    "token_reservations": {
        "id": "i", "seq": "i", "timestamp": "t", "request_id": "t", "agent_id": "t", "day": "t", "tokens": "i",
        "stage": "t",
    },
}  # fmt: skip

TABLES = tuple(COLUMNS)

_STORED = {"i": int, "r": float, "t": str}
"""What SQLite hands back for a value of each kind in its column (INTEGER, REAL, TEXT affinity)."""
_STORAGE_NAMES = {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}
# Each table's columns in key order with their type: the row is built already sorted (the encoder still sorts).
_SORTED = {table: [(name, _STORED[kind]) for name, kind in sorted(cols.items())] for table, cols in COLUMNS.items()}
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
_INT64 = (-(2**63), 2**63 - 1)
"""The integers both engines store (SQLite's INTEGER, PostgreSQL's BIGINT)."""


def typed(table: str, row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The table's hashed columns of `row`, in sorted order, each as SQLite will hand it back; and whether an
    integer among them is past 64 bits (which neither engine can store).

    Only the two conversions SQLite makes on the way in are applied (an integer into a REAL column comes
    back a float; Python's `bool` is stored as an integer). Any other value is kept as found: a REAL 0.5
    written into `success` later is not read as the 0 it would truncate to, so it cannot match the hash
    the row was written with. One pass: appending a row calls this once for its hash and its insert.
    """
    found: dict[str, Any] = {}
    too_large = False
    low, high = _INT64
    for name, stored in _SORTED[table]:
        value: Any = row.get(name)
        kind = type(value)
        if kind is int and not low <= value <= high:
            too_large = True
        if value is not None and kind is not stored:
            if stored is float and kind is int:
                value = float(value)
            elif stored is int and kind is bool:
                value = int(value)
        found[name] = value
    return found, too_large


def canonical(table: str, prev_hash: str, row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers: its columns as `typed` gives them (as SQLite will hand them back)."""
    return _canonical(table, prev_hash, typed(table, row)[0])


def _canonical(table: str, prev_hash: str, columns: dict[str, Any]) -> bytes:
    return _TAG + _ENCODER.encode({"prev": prev_hash, "row": columns, "table": table}).encode()


def storage_problems(table: str, row: Mapping[str, Any]) -> list[str]:
    """Columns of a row read back from SQLite that hold another storage class than the ledger writes there."""
    problems = []
    for name, stored in _SORTED[table]:
        value = row.get(name)
        if value is not None and type(value) is not stored:
            found = _STORAGE_NAMES.get(type(value), type(value).__name__)
            problems.append(f"{name} holds {found} {_excerpt(value)} where the ledger writes {_STORAGE_NAMES[stored]}")
    return problems


def _excerpt(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:40] + "..."


def algorithm(stored_hash: str) -> str:
    """`sha256` or `hmac-sha256` for a v1 hash; anything else for a hash this version does not know."""
    version, _, rest = stored_hash.partition(":")
    return rest.partition(":")[0] if version == _VERSION else f"unknown ({version})"


class Hasher:
    """Hashes rows: keyed (HMAC-SHA256) when given a key, plain SHA-256 otherwise."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def row_hash(self, table: str, prev_hash: str, row: Mapping[str, Any]) -> str:
        return self.typed_hash(table, prev_hash, typed(table, row)[0])

    def typed_hash(self, table: str, prev_hash: str, columns: dict[str, Any]) -> str:
        """`row_hash` of a row whose columns `typed` already gave."""
        data = _canonical(table, prev_hash, columns)
        if self._key is None:
            return f"{_VERSION}:sha256:{hashlib.sha256(data).hexdigest()}"
        return f"{_VERSION}:hmac-sha256:{hmac.new(self._key, data, hashlib.sha256).hexdigest()}"

    def matches(self, stored_hash: str, table: str, prev_hash: str, row: Mapping[str, Any]) -> bool | None:
        """Whether `stored_hash` is the row's hash; None when it is keyed and this hasher has no key."""
        alg = algorithm(stored_hash)
        if alg == "sha256":
            return hmac.compare_digest(stored_hash, Hasher().row_hash(table, prev_hash, row))
        if alg == "hmac-sha256":
            if self._key is None:
                return None
            return hmac.compare_digest(stored_hash, self.row_hash(table, prev_hash, row))
        return False
