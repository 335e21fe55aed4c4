"""What `ledger report` shows, counted by the database: calls per day, refusals and errors, escalations, tokens,
the slowest calls, refused callers.

Every figure is one aggregate statement (GROUP BY, or ORDER BY with a small LIMIT), so no row of a large ledger
is held in Python; what comes back is bounded by days, agents, decisions and kinds, or by a LIMIT. Only chained
rows up to `upto` (the head `verify` checked) are counted, so the figures describe the very rows verified, even
while servers append. The SQL keeps to what SQLite and PostgreSQL read alike (see `ledger.storage`).

Everything here is as the ledger stores it: agent ids, tool names, models, notes and messages are text a caller,
an upstream or an intruder may have chosen. Whoever shows them escapes them.
"""

from dataclasses import dataclass
from typing import Any

from ledger.reader import has_table
from ledger.storage import Conn

__all__ = ["Escalation", "Figures", "SlowCall", "TokenUse", "gather"]

ESCALATIONS_SHOWN = 25
SLOWEST_SHOWN = 20
REFUSED_TOOLS_SHOWN = 20
REFUSED_CALLERS_SHOWN = 20

_CALLS = "FROM agent_actions WHERE seq <= ? AND timestamp >= ?"
_DAY = "substr(timestamp, 1, 10)"
_INT = "CAST(coalesce({}, 0) AS BIGINT)"


@dataclass(frozen=True, slots=True)
class Escalation:
    """One ESCALATE outcome, with all the ledger records of why: its confidence (the agent's threshold is its
    policy's, not recorded per call), the model that answered, an error if any, and the call's notes."""

    timestamp: str
    agent_id: str
    action: str
    tier: int
    confidence: float
    llm_model: str | None
    error_type: str | None
    error_message: str | None
    notes: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class SlowCall:
    timestamp: str
    agent_id: str
    action: str
    duration_ms: float
    decision: str
    error_type: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class TokenUse:
    agent_id: str
    llm_model: str | None
    calls: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Figures:
    """The report's figures; each `(…, count)` tuple as the database grouped it."""

    since: str
    upto: int
    calls: int
    first: str | None
    last: str | None
    by_day_decision: list[tuple[str, str, int]]
    by_day_agent: list[tuple[str, str, int]]
    kinds: list[tuple[bool, str, int]]
    """(refused, error type, count) of every ERROR outcome: refused before any work, or failed while working."""
    refused_tools: list[tuple[str, str, int]]
    """(tool name as recorded, error type, count), most refused first."""
    escalation_groups: list[tuple[str, str, int, float, float]]
    """(agent, tool, count, lowest confidence, mean confidence), most first."""
    escalations: list[Escalation]
    """The newest escalations, newest first."""
    tokens: list[TokenUse]
    slowest: list[SlowCall]
    refused_callers: list[tuple[str, int]]
    """`caller-refused` events per day: callers the agents file gives to no agent, turned away."""
    refused_caller_details: list[tuple[str, str]]
    """(timestamp, detail) of the newest of them."""
    events: list[tuple[str, int]]
    """Every ledger event kind (key, durability, schema upgrades, refused callers) and its count."""


def gather(conn: Conn, *, upto: int, since: str = "") -> Figures:
    """The figures of the calls recorded at or after `since` (a ledger timestamp; "" for all) in the chained rows
    up to seq `upto`, read through `conn` (a snapshot)."""
    window = (upto, since)
    calls, first, last = conn.execute(f"SELECT count(*), min(timestamp), max(timestamp) {_CALLS}", window).fetchone()
    return Figures(
        since=since,
        upto=upto,
        calls=int(calls),
        first=first,
        last=last,
        by_day_decision=_grouped(conn, f"{_DAY}, decision", window),
        by_day_agent=_grouped(conn, f"{_DAY}, agent_id", window),
        kinds=[
            (refused == 1, kind, int(n))
            for refused, kind, n in conn.execute(
                f"SELECT refused, coalesce(error_type, ''), count(*) {_CALLS} AND decision = 'ERROR'"
                " GROUP BY refused, coalesce(error_type, '') ORDER BY count(*) DESC",
                window,
            )
        ],
        refused_tools=_rows(
            conn,
            f"SELECT action, coalesce(error_type, ''), count(*) AS n {_CALLS} AND refused = 1"
            f" GROUP BY action, coalesce(error_type, '') ORDER BY n DESC, action LIMIT {REFUSED_TOOLS_SHOWN}",
            window,
        ),
        escalation_groups=_rows(
            conn,
            f"SELECT agent_id, action, count(*) AS n, min(confidence), avg(confidence) {_CALLS}"
            " AND decision = 'ESCALATE' GROUP BY agent_id, action ORDER BY n DESC, agent_id, action LIMIT 50",
            window,
        ),
        escalations=[Escalation(*row) for row in _rows(conn, _NEWEST_ESCALATIONS, window)],
        tokens=[TokenUse(*row) for row in _rows(conn, _TOKENS, window)],
        slowest=[SlowCall(*row) for row in _rows(conn, _SLOWEST, window)],
        **_events(conn, window),
    )


_NEWEST_ESCALATIONS = (
    "SELECT timestamp, agent_id, action, tier, confidence, llm_model, error_type, error_message, notes, request_id"
    f" {_CALLS} AND decision = 'ESCALATE' ORDER BY seq DESC LIMIT {ESCALATIONS_SHOWN}"
)
_TOKENS = (
    f"SELECT agent_id, llm_model, count(*), {_INT.format('sum(prompt_tokens)')},"
    f" {_INT.format('sum(completion_tokens)')} {_CALLS}"
    " AND (prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL)"
    " GROUP BY agent_id, llm_model ORDER BY agent_id, llm_model"
)
_SLOWEST = (
    "SELECT timestamp, agent_id, action, duration_ms, decision, error_type, request_id"
    f" {_CALLS} AND duration_ms IS NOT NULL ORDER BY duration_ms DESC, seq LIMIT {SLOWEST_SHOWN}"
)


def _grouped(conn: Conn, keys: str, window: tuple[int, str]) -> list[tuple[str, str, int]]:
    return _rows(conn, f"SELECT {keys}, count(*) {_CALLS} GROUP BY {keys} ORDER BY {keys}", window)


def _rows(conn: Conn, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
    return [tuple(row) for row in conn.execute(sql, parameters).fetchall()]


def _events(conn: Conn, window: tuple[int, str]) -> dict[str, Any]:
    """The ledger's own events in the window: refused callers by day and the newest of them, and every kind."""
    if not has_table(conn, "ledger_events"):  # a ledger an older version wrote
        return {"refused_callers": [], "refused_caller_details": [], "events": []}
    events = "FROM ledger_events WHERE seq <= ? AND timestamp >= ?"
    refused = f"{events} AND kind = 'caller-refused'"
    return {
        "refused_callers": _rows(conn, f"SELECT {_DAY}, count(*) {refused} GROUP BY {_DAY} ORDER BY {_DAY}", window),
        "refused_caller_details": _rows(
            conn, f"SELECT timestamp, detail {refused} ORDER BY seq DESC LIMIT {REFUSED_CALLERS_SHOWN}", window
        ),
        "events": _rows(conn, f"SELECT kind, count(*) AS n {events} GROUP BY kind ORDER BY n DESC, kind", window),
    }
