"""The calls a ledger records, in chain order, for `ledger replay` to judge again under another agents file.

Every call has an outcome row (`agent_actions`), a refusal only that: the outcomes alone say what was called, by
whom, as which agent, and how it ended. They are read in pages of `PAGE` rows by sequence, so memory stays flat
at any ledger size and a PostgreSQL driver never holds the whole result. Rows with no place in the chain (written
outside the ledger, which `verify` names) are not read.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from ledger.reader import PAGE
from ledger.records import utc_timestamp
from ledger.storage import Conn

__all__ = ["RecordedCall", "day_start", "recorded_calls", "since_timestamp"]

_COLUMNS = (
    "seq", "request_id", "timestamp", "agent_id", "tier", "action", "refused", "error_type", "llm_model",
    "prompt_tokens", "completion_tokens", "tools_digest", "notes",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One call as its outcome row records it (never its arguments: they may hold a caller's context)."""

    seq: int
    request_id: str
    timestamp: str
    agent_id: str
    tier: int
    action: str
    refused: bool
    """Refused before any work (the allowlist, the arguments, the model, the budget at the intent)."""
    error_type: str | None
    llm_model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    tools_digest: str
    notes: str

    @property
    def tokens(self) -> int:
        """The LLM tokens the call spent, as its agent's daily budget counts them."""
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


def since_timestamp(text: str) -> str:
    """`--since` (an ISO date or date and time; UTC unless it names an offset) as the ledger writes timestamps, so
    rows compare with it as text. Raises ValueError for anything else."""
    try:
        when = datetime.combine(date.fromisoformat(text), time(), UTC) if len(text) == 10 else None
    except ValueError:
        when = None
    if when is None:
        parsed = datetime.fromisoformat(text)
        when = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    return utc_timestamp(when)


def day_start(timestamp: str) -> str:
    """The start of the UTC day a ledger timestamp falls on, as a ledger timestamp."""
    return since_timestamp(timestamp[:10])


def recorded_calls(conn: Conn, *, since: str | None = None, page: int = PAGE) -> Iterator[RecordedCall]:
    """The calls recorded at or after `since` (a ledger timestamp, see `since_timestamp`), in chain order."""
    where, parameters = ("seq > ?", []) if since is None else ("seq > ? AND timestamp >= ?", [since])
    last = 0
    while True:
        cursor = conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM agent_actions WHERE {where} ORDER BY seq LIMIT {int(page)}",
            (last, *parameters),
        )
        batch = cursor.fetchall()
        for values in batch:
            yield _call(dict(zip(_COLUMNS, values, strict=True)))
        if len(batch) < page:
            return
        last = batch[-1][0]


def _call(row: dict[str, Any]) -> RecordedCall:
    # Only the integer 1 the ledger writes is true, as `ledger tail` reads it.
    refused = type(row["refused"]) is int and row["refused"] == 1
    return RecordedCall(
        **{**row, "refused": refused, "notes": row["notes"] or "", "tools_digest": row["tools_digest"] or ""}
    )
