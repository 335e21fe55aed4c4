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
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["COLUMNS", "GENESIS", "TABLES", "Hasher", "algorithm", "canonical"]

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
}  # fmt: skip

TABLES = tuple(COLUMNS)

_CAST = {"i": int, "r": float, "t": str}
# Each table's columns in key order with their cast: the row is built already sorted (the encoder still sorts).
_SORTED = {table: [(name, _CAST[kind]) for name, kind in sorted(columns.items())] for table, columns in COLUMNS.items()}
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def canonical(table: str, prev_hash: str, row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers. Values take the column's type, as SQLite will hand them back."""
    typed = {}
    for name, cast in _SORTED[table]:
        value = row.get(name)
        # A value already of its column's type is kept (the common case, and `bool` is not `int` here).
        typed[name] = value if value is None or type(value) is cast else _typed(cast, value)
    return _TAG + _ENCODER.encode({"prev": prev_hash, "row": typed, "table": table}).encode()


def _typed(cast: Callable[[Any], Any], value: Any) -> Any:
    try:
        return cast(value)
    except (TypeError, ValueError):
        return value  # not what this column holds: hashed as found, so it cannot match what was written


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
        data = canonical(table, prev_hash, row)
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
