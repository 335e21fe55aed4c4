"""Daily token budgets, held by the chain: every LLM call reserves its worst case before it may go on.

What a day has cost an agent is read from chained rows only: the token counts of its outcomes, and the
reservations (`token_reservations`, chained too) of its calls that have not settled. A call reserves
`max_tokens` in its intent's transaction, and its prompt's size just before its request is sent; each
reservation is taken only while what the *other* calls have spent and reserved that day is under the
budget, in the same write transaction that records it, so calls in any number of processes see each
other's reservations. Together that bounds a day's overshoot by one call's reservation.

A reservation settles when its call's outcome is recorded: the outcome's own token counts take its place.
A call whose request was sent but whose outcome carries no counts (a timeout, a cancel, a dropped
connection) keeps its whole reservation: what it cost cannot be known, so the worst case is counted.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from ledger.append import Tail, append
from ledger.chain import Hasher
from ledger.records import utc_now
from ledger.storage import Conn

__all__ = ["BudgetExhausted", "Reservation", "Stage", "committed", "reserve"]

Stage = Literal["intent", "request"]

_SPENT = """
    SELECT CAST(coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0) AS BIGINT)
    FROM agent_actions
    WHERE agent_id = ? AND timestamp >= ? AND timestamp < ?
      AND (prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL)
"""
_RESERVED = """
    SELECT CAST(coalesce(sum(r.tokens), 0) AS BIGINT) FROM token_reservations r
    WHERE r.agent_id = ? AND r.day = ? AND r.request_id IS DISTINCT FROM ?
      AND NOT EXISTS (
          SELECT 1 FROM agent_actions a WHERE a.request_id = r.request_id
          AND (a.prompt_tokens IS NOT NULL OR a.completion_tokens IS NOT NULL
               OR NOT EXISTS (SELECT 1 FROM token_reservations s WHERE s.request_id = r.request_id
                              AND s.stage = 'request')))
"""
"""A reservation stands until its call's outcome settles it: with the outcome's own counts, or as costing
nothing when the call never sent its request. (An outcome without counts after a request settles nothing.)"""


class BudgetExhausted(Exception):
    """The day's budget is spent or reserved: the call must not go on. Nothing was written."""

    def __init__(self, committed: int, budget: int, day: str) -> None:
        super().__init__(f"{committed} of {budget} tokens spent or reserved on {day}")
        self.committed = committed
        self.budget = budget
        self.day = day


@dataclass(frozen=True)
class Reservation:
    """The most one LLM call may spend at this stage, and the daily budget it is taken from."""

    tokens: int
    budget: int


def committed(conn: Conn, agent_id: str, day: str, *, excluding: str | None = None) -> int:
    """Tokens the agent's calls spent on `day` (UTC) plus those reserved by calls that have not settled,
    leaving out the reservations of the call `excluding`. Index lookups over that day's LLM calls only."""
    following = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    (spent,) = conn.execute(_SPENT, (agent_id, day, following)).fetchone()
    (reserved,) = conn.execute(_RESERVED, (agent_id, day, excluding)).fetchone()
    return int(spent) + int(reserved)


def reserve(
    conn: Conn,
    hasher: Hasher,
    tail: Tail,
    *,
    request_id: str,
    agent_id: str,
    stage: Stage,
    reservation: Reservation,
) -> None:
    """Chain a reservation for the call `request_id`, inside the caller's write transaction, or raise
    `BudgetExhausted` when the other calls of the day have already spent or reserved the budget."""
    now = utc_now()
    day = now[:10]
    total = committed(conn, agent_id, day, excluding=request_id)
    if total >= reservation.budget:
        raise BudgetExhausted(total, reservation.budget, day)
    row = {"timestamp": now, "request_id": request_id, "agent_id": agent_id, "day": day,
           "tokens": reservation.tokens, "stage": stage}  # fmt: skip
    append(conn, hasher, "token_reservations", row, tail)
