"""What the server and the CLI ask of the ledger: budgets, the newest calls, an agent's own log, metrics.

Every query a call asks is an index lookup or a bounded range, so none slows as the ledger grows; `stats` is
a report, and reads every outcome.
"""

import contextlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from ledger.budget import committed
from ledger.metrics import as_dicts, derived
from ledger.storage import Conn

__all__ = ["CALLER_WINDOW", "Queries"]

_T = TypeVar("_T")

CALLER_WINDOW = 10_000
"""How far back (in an agent's outcomes) one caller's calls are looked for among everyone's."""

_LOG_COLUMNS = (
    "seq, timestamp, request_id, action, decision, confidence, success, refused, error_type, error_message,"
    " duration_ms, arguments, llm_model, prompt_tokens, completion_tokens"
)


class Queries:
    """Read-only questions, asked through the ledger's own connection and locks."""

    def _read(self, work: Callable[[Conn], _T]) -> _T:
        raise NotImplementedError

    def tokens_committed(self, agent_id: str, day: str) -> int:
        """LLM tokens the agent's calls spent on `day` (UTC, YYYY-MM-DD), plus those its unsettled calls
        reserved: what its daily budget is checked against (see `ledger.budget`)."""
        return self._read(lambda conn: committed(conn, agent_id, day))

    def tail(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest `limit` outcomes, oldest first."""

        def select(conn: Conn) -> list[dict[str, Any]]:
            newest = as_dicts(conn.execute("SELECT * FROM agent_actions ORDER BY id DESC LIMIT ?", (limit,)))
            return newest[::-1]

        return self._read(select)

    def agent_log(
        self, agent_id: str, limit: int, action: str | None = None, caller: str | None = None
    ) -> list[dict[str, Any]]:
        """The agent's newest `limit` outcomes (of one action, if given), newest first, arguments parsed.

        `caller` keeps only the calls whose `notes` close with that record of who made them (`server.call.callers`),
        looked for among the agent's newest `CALLER_WINDOW` outcomes, so the search stays a bounded range.
        """
        where = "agent_id = ?"
        params: list[object] = [agent_id]
        if action is not None:
            where += " AND action = ?"
            params.append(action)
        if caller is not None:
            where += (
                " AND (notes = ? OR substr(notes, length(notes) - ?) = ?) AND id >= coalesce((SELECT id"
                " FROM agent_actions WHERE agent_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?), 0)"
            )
            params += [caller, len(caller) + 1, f"; {caller}", agent_id, CALLER_WINDOW - 1]

        def select(conn: Conn) -> list[dict[str, Any]]:
            found = as_dicts(
                conn.execute(
                    f"SELECT {_LOG_COLUMNS} FROM agent_actions WHERE {where} ORDER BY id DESC LIMIT ?",
                    (*params, limit),
                )
            )
            for entry in found:
                # Only the integer 1 the ledger writes is true: a REAL 0.5 put there by hand is not a success.
                entry["success"], entry["refused"] = _flag(entry["success"]), _flag(entry["refused"])
                with contextlib.suppress(TypeError, ValueError):  # a row written by something else: shown as stored
                    entry["arguments"] = json.loads(entry["arguments"])
            return found

        return self._read(select)

    def stats(self) -> list[dict[str, Any]]:
        """Per agent: the seed's agent_metrics and the tokens spent, counted from the outcomes themselves (not
        read from agent_metrics, which anyone who can write the file can rewrite: `verify` names drift)."""
        return self._read(lambda conn: [{name: row[name] for name in _STATS} for row in derived(conn)])


_STATS = (
    "agent_id", "current_tier", "total_runs", "compliant_runs", "consecutive_compliant", "refused_runs", "error_runs",
    "prompt_tokens", "completion_tokens", "llm_calls", "last_active_at",
)  # fmt: skip


def _flag(value: Any) -> bool:
    return type(value) is int and value == 1
