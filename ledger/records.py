"""What the ledger is asked to record: the intent of a call and its outcome."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["CallRecord", "Intent", "Outcome", "utc_now", "utc_timestamp"]


def utc_timestamp(when: datetime) -> str:
    """The ledger's timestamps, written only here: UTC, milliseconds, ISO 8601 with a Z (they sort as text).
    The chain hashes them as text, so this encoding is fixed; the server's replies and JSON logs use it too."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> str:
    """The ledger's timestamp for this moment: `utc_timestamp(datetime.now(UTC))`, with the part up to the second
    made once a second (every call takes two or three of these)."""
    global _SECOND
    second, millisecond = divmod(time.time_ns() // 1_000_000, 1000)
    made, prefix = _SECOND
    if made != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _SECOND = (second, prefix)  # replaced whole: a thread reads the old pair or the new one
    return f"{prefix}.{millisecond:03d}Z"


_SECOND: tuple[int, str] = (-1, "")
"""The last second `utc_now` spelt, and how."""


@dataclass(frozen=True, kw_only=True)
class CallRecord:
    """What every record says about its call: who, what, with which arguments, under which tool list."""

    request_id: str
    timestamp: str
    agent_id: str
    agent_version: str
    tier: int
    action: str
    arguments: dict[str, Any]
    tools_digest: str
    client_request_id: str | None = None
    """The JSON-RPC id the client gave the call, to match the ledger with the host's own logs."""
    notes: str = ""
    """What an auditor must know about the conditions of the call (e.g. Vault TLS verification was off)."""


@dataclass(frozen=True, kw_only=True)
class Intent(CallRecord):
    """Recorded before anything is read or asked of an LLM."""


@dataclass(frozen=True, kw_only=True)
class Outcome(CallRecord):
    """Recorded before the result is sent; one `agent_actions` row in the seed's shape, plus provenance."""

    decision: str
    confidence: float
    success: bool
    intent_id: int | None = None
    refused: bool = False
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float | None = None
    output_digest: str | None = None
    llm_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
