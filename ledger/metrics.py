"""The seed's per-agent counters: kept in `agent_metrics` as each outcome lands, derived from the chain to report.

`agent_metrics` sits outside the hash chain, so anyone who can write the file can rewrite it and make an
agent look compliant. The seed's own queries read it, so it is kept current; but what the ledger reports
(`ledger stats`) is counted from the chained outcomes themselves, and `verify` names every counter that
disagrees with them.
"""

from typing import Any

from ledger.records import Outcome
from ledger.storage import Conn

__all__ = ["METRIC_COLUMNS", "as_dicts", "derived", "drift", "update_metrics"]

METRIC_COLUMNS = (
    "current_tier", "total_runs", "compliant_runs", "consecutive_compliant", "refused_runs", "error_runs",
    "last_active_at",
)  # fmt: skip
"""The counters of `agent_metrics` that the outcomes determine (the rest are bookkeeping times)."""

_PER_AGENT = """
    SELECT agent_id,
           count(*) AS total_runs,
           CAST(coalesce(sum(CASE WHEN success = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS compliant_runs,
           CAST(coalesce(sum(CASE WHEN refused = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS refused_runs,
           CAST(coalesce(sum(CASE WHEN success = 0 AND refused = 0 THEN 1 ELSE 0 END), 0) AS BIGINT) AS error_runs,
           CAST(coalesce(sum(prompt_tokens), 0) AS BIGINT) AS prompt_tokens,
           CAST(coalesce(sum(completion_tokens), 0) AS BIGINT) AS completion_tokens,
           CAST(coalesce(sum(CASE WHEN prompt_tokens IS NOT NULL OR completion_tokens IS NOT NULL THEN 1 ELSE 0 END),
                         0) AS BIGINT) AS llm_calls,
           max(id) AS last_id,
           coalesce(max(CASE WHEN success = 1 THEN NULL ELSE id END), 0) AS last_failure
    FROM agent_actions GROUP BY agent_id ORDER BY agent_id
"""


def update_metrics(conn: Conn, outcome: Outcome) -> None:
    """The seed's agent_metrics, kept current in the outcome's own transaction."""
    compliant = int(outcome.success)
    refused = int(outcome.refused)
    errored = int(not outcome.success and not outcome.refused)
    conn.execute_later(
        """
        INSERT INTO agent_metrics (agent_id, current_tier, total_runs, compliant_runs, consecutive_compliant,
                                   refused_runs, error_runs, last_active_at, created_at, updated_at)
        VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT(agent_id) DO UPDATE SET
            current_tier = excluded.current_tier,
            total_runs = agent_metrics.total_runs + 1,
            compliant_runs = agent_metrics.compliant_runs + excluded.compliant_runs,
            consecutive_compliant = CASE WHEN excluded.compliant_runs = 1
                                         THEN agent_metrics.consecutive_compliant + 1 ELSE 0 END,
            refused_runs = agent_metrics.refused_runs + excluded.refused_runs,
            error_runs = agent_metrics.error_runs + excluded.error_runs,
            last_active_at = excluded.last_active_at,
            updated_at = excluded.updated_at
        """,
        (
            outcome.agent_id, outcome.tier, compliant, compliant, refused, errored,
            outcome.timestamp, outcome.timestamp, outcome.timestamp,
        ),
    )  # fmt: skip


def derived(conn: Conn) -> list[dict[str, Any]]:
    """Per agent, what `agent_metrics` should say, plus the LLM tokens spent, counted from the outcomes.

    One pass over the outcomes (a report, not the per-call path); the newest outcome of each agent gives its
    tier and last activity, and the outcomes after its newest failure are its consecutive compliant runs.
    """
    found = []
    for row in as_dicts(conn.execute(_PER_AGENT)):
        last_id, last_failure = row.pop("last_id"), row.pop("last_failure")
        tier, last_active = conn.execute(
            "SELECT tier, timestamp FROM agent_actions WHERE id = ?", (last_id,)
        ).fetchone()
        (consecutive,) = conn.execute(
            "SELECT count(*) FROM agent_actions WHERE agent_id = ? AND id > ?", (row["agent_id"], last_failure)
        ).fetchone()
        found.append({**row, "current_tier": tier, "consecutive_compliant": consecutive, "last_active_at": last_active})
    return found


def drift(conn: Conn, counted: list[dict[str, Any]]) -> list[str]:
    """Each way `agent_metrics` disagrees with the outcomes `counted` by `derived`, in words."""
    kept = {row["agent_id"]: row for row in as_dicts(conn.execute("SELECT * FROM agent_metrics"))}
    problems = []
    for row in counted:
        agent = row["agent_id"]
        stored = kept.pop(agent, None)
        if stored is None:
            problems.append(f"agent_metrics has no row for {agent!r}, which has {row['total_runs']} outcomes")
            continue
        problems += [
            f"agent_metrics says {column} = {stored[column]!r} for {agent!r}; its outcomes say {row[column]!r}"
            for column in METRIC_COLUMNS
            if stored[column] != row[column]
        ]
    problems += [f"agent_metrics counts {stored['total_runs']!r} runs of {agent!r}, which has no outcomes"
                 for agent, stored in kept.items()]  # fmt: skip
    return problems


def as_dicts(cursor: Any) -> list[dict[str, Any]]:
    """The rows a query returns, as dicts by column name."""
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
