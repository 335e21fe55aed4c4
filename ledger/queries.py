"""What the server and the CLI ask of the ledger: budgets, the newest calls, an agent's own log, metrics.

Every query here is an index lookup or a bounded range: none scans the ledger, so none slows as it grows.
"""

import contextlib
import json
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["CALLER_WINDOW", "Queries"]

_T = TypeVar("_T")

CALLER_WINDOW = 10_000
"""How far back (in an agent's outcomes) one caller's calls are looked for among everyone's."""

_LOG_COLUMNS = (
    "seq, timestamp, request_id, action, decision, confidence, success, refused, error_type, error_message,"
    " duration_ms, arguments, llm_model, prompt_tokens, completion_tokens"
)


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class Queries:
    """Read-only questions, asked through the ledger's own connection and locks."""

    def _read(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        raise NotImplementedError

    def tokens_spent(self, agent_id: str, day: str) -> int:
        """LLM tokens (prompt and completion) the agent's recorded calls spent on `day` (UTC, YYYY-MM-DD)."""

        def select(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT prompt_tokens + completion_tokens FROM agent_token_usage WHERE agent_id = ? AND day = ?",
                (agent_id, day),
            ).fetchone()
            return int(row[0]) if row else 0

        return self._read(select)

    def tail(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest `limit` outcomes, oldest first."""

        def select(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            newest = _dicts(conn.execute("SELECT * FROM agent_actions ORDER BY id DESC LIMIT ?", (limit,)))
            return newest[::-1]

        return self._read(select)

    def agent_log(
        self, agent_id: str, limit: int, action: str | None = None, caller: str | None = None
    ) -> list[dict[str, Any]]:
        """The agent's newest `limit` outcomes (of one action, if given), newest first, arguments parsed.

        `caller` keeps only the calls whose `notes` close with that record of who made them (`server.callers`),
        looked for among the agent's newest `CALLER_WINDOW` outcomes, so the search stays a bounded range.
        """
        where = "agent_id = ?"
        params: list[object] = [agent_id]
        if action is not None:
            where += " AND action = ?"
            params.append(action)
        if caller is not None:
            where += (
                " AND (notes = ? OR substr(notes, -?) = ?) AND id >= coalesce((SELECT id FROM agent_actions"
                " WHERE agent_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?), 0)"
            )
            params += [caller, len(caller) + 2, f"; {caller}", agent_id, CALLER_WINDOW - 1]

        def select(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            found = _dicts(
                conn.execute(
                    f"SELECT {_LOG_COLUMNS} FROM agent_actions WHERE {where} ORDER BY id DESC LIMIT ?",
                    (*params, limit),
                )
            )
            for entry in found:
                entry["success"], entry["refused"] = bool(entry["success"]), bool(entry["refused"])
                with contextlib.suppress(TypeError, ValueError):  # a row written by something else: shown as stored
                    entry["arguments"] = json.loads(entry["arguments"])
            return found

        return self._read(select)

    def stats(self) -> list[dict[str, Any]]:
        """Per agent: the seed's agent_metrics, kept current with every outcome, plus the tokens spent."""

        def select(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return _dicts(
                conn.execute(
                    """
                    SELECT m.agent_id, m.current_tier, m.total_runs, m.compliant_runs, m.consecutive_compliant,
                           m.refused_runs, m.error_runs,
                           coalesce(sum(u.prompt_tokens), 0) AS prompt_tokens,
                           coalesce(sum(u.completion_tokens), 0) AS completion_tokens,
                           coalesce(sum(u.llm_calls), 0) AS llm_calls,
                           m.last_active_at
                    FROM agent_metrics m LEFT JOIN agent_token_usage u ON u.agent_id = m.agent_id
                    GROUP BY m.agent_id ORDER BY m.agent_id
                    """
                )
            )

        return self._read(select)
