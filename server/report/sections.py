"""The report's sections, in the order the page shows them: each a function of the figures and its context.

Every table has an id (`summary`, `decisions`, `agents`, `kinds`, `refused-tools`, `escalations`, `escalated`,
`tokens`, `slowest`, `refused-callers`, `refused-caller-details`, `events`), so a reader, or a test, finds it by
name.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ledger.figures import Escalation, Figures
from server.report.charts import DECISION_COLOURS, TOKEN_COLOURS, agent_colours, bars, columns
from server.report.series import DECISIONS, OTHERS, by_period, period_of
from server.report.text import table, text

__all__ = ["SECTIONS", "Context"]

_AGENT_SERIES = 8
_TOKEN_ROWS = 20
_ESCALATED = (
    "time", "agent", "tool", "tier", "confidence", "threshold today", "model", "why, as recorded", "notes",
    "request id",
)  # fmt: skip


@dataclass(frozen=True)
class Context:
    """What the page says about where its figures come from."""

    ledger: str
    """The ledger's place as `ledger.storage.describe` shows it: a URL never with its password."""
    generated: str
    thresholds: Mapping[str, float] | None
    """Each agent's confidence threshold in today's configuration (None: it could not be read): the ledger keeps a
    call's confidence, not the threshold it was judged against."""


def _summary(figures: Figures, context: Context) -> str:
    decided = _totals((d, n) for _, d, n in figures.by_day_decision)
    refused = sum(n for was_refused, _, n in figures.kinds if was_refused)
    tokens = sum(t.prompt_tokens + t.completion_tokens for t in figures.tokens)
    callers = sum(n for _, n in figures.refused_callers)
    span = f"from {figures.first} to {figures.last}" if figures.calls else "none in this window"
    rows = [
        ("calls", figures.calls),
        ("refused before any work", refused),
        ("ended in another error", decided.get("ERROR", 0) - refused),
        ("escalated to a human", decided.get("ESCALATE", 0)),
        ("LLM tokens spent", tokens),
        ("callers refused (no agent of the agents file)", callers),
    ]
    return f"<h2>Summary</h2><p>Calls {text(span)}.</p>" + table(("", "count"), rows, numeric={1}, name="summary")


def _calls(figures: Figures, context: Context) -> str:
    period = period_of(day for day, _, _ in figures.by_day_decision)
    decisions = by_period(figures.by_day_decision, period, names=DECISIONS)
    agents = by_period(figures.by_day_agent, period, most=_AGENT_SERIES)
    dropped = (
        f'<p class="note">Only the newest {len(decisions.labels):,} {period}s are drawn; {decisions.dropped:,} older '
        "ones are left out (dates this far apart are a sign of rows written by hand).</p>"
        if decisions.dropped
        else ""
    )
    decided = _totals((d, n) for _, d, n in figures.by_day_decision)
    by_agent = _totals((a, n) for _, a, n in figures.by_day_agent)
    return (
        f"<h2>Calls per {period}</h2>{dropped}<h3>By decision</h3>"
        + columns(f"Calls per {period} by decision", decisions, DECISION_COLOURS)
        + table(("decision", "calls"), _ranked(decided, DECISIONS), numeric={1}, name="decisions")
        + "<h3>By agent</h3>"
        + columns(f"Calls per {period} by agent", agents, agent_colours([s.name for s in agents.series]))
        + table(("agent", "calls"), _ranked(by_agent), numeric={1}, name="agents")
    )


def _refusals(figures: Figures, context: Context) -> str:
    kinds = [("refused" if was_refused else "error", kind or "-", n) for was_refused, kind, n in figures.kinds]
    return (
        "<h2>Refusals and errors by kind</h2>"
        '<p class="note">A refusal ended the call before any work (the allowlist, the arguments, the model, the '
        "budget); an error ended it while it worked (a store, Vault, the LLM).</p>"
        + table(("how it ended", "error kind", "calls"), kinds, numeric={2}, name="kinds")
        + "<h3>Most refused tools</h3>"
        + table(("tool, as called", "error kind", "calls"), figures.refused_tools, numeric={2}, name="refused-tools")
    )


def _escalations(figures: Figures, context: Context) -> str:
    thresholds = context.thresholds
    known = "" if thresholds is not None else " (today's configuration could not be read)"
    newest = [
        (e.timestamp, e.agent_id, e.action, e.tier, e.confidence, _threshold(e, thresholds), e.llm_model,
         _why(e, thresholds), e.notes or "-", e.request_id)
        for e in figures.escalations
    ]  # fmt: skip
    return (
        "<h2>Escalations</h2>"
        '<p class="note">ESCALATE: a human must decide. The ledger records each call\'s confidence, tier, the model '
        "that answered and any error; the confidence threshold is the agent's policy, shown as today's "
        f"configuration has it{text(known)}. A confidence at or above it means another rule decided: the plan "
        "needed a higher tier, or the model that answered is not one this tier may use. A reply that could not be "
        "read as a plan or an analysis is recorded with confidence 0.</p>"
        + table(
            ("agent", "tool", "escalations", "lowest confidence", "mean confidence"),
            figures.escalation_groups,
            numeric={2, 3, 4},
            name="escalations",
        )
        + f"<h3>The newest {len(newest)}</h3>"
        + table(
            _ESCALATED,
            newest,
            numeric={3, 4, 5},
            name="escalated",
        )
    )


def _threshold(escalation: Escalation, thresholds: Mapping[str, float] | None) -> float | None:
    return None if thresholds is None else thresholds.get(escalation.agent_id)


def _why(escalation: Escalation, thresholds: Mapping[str, float] | None) -> str:
    if escalation.error_type:
        return f"{escalation.error_type}: {escalation.error_message or ''}"
    threshold = _threshold(escalation, thresholds)
    if threshold is None:
        return f"confidence {escalation.confidence:.2f}; the agent's threshold is not known"
    if escalation.confidence < threshold:
        return f"confidence {escalation.confidence:.2f} is below the threshold {threshold:.2f}"
    return f"confidence {escalation.confidence:.2f} meets the threshold {threshold:.2f}: the tier or the model decided"


def _tokens(figures: Figures, context: Context) -> str:
    per_agent: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for use in figures.tokens:
        per_agent[use.agent_id][0] += use.prompt_tokens
        per_agent[use.agent_id][1] += use.completion_tokens
    ranked = sorted(per_agent.items(), key=lambda item: (-sum(item[1]), item[0]))
    shown = ranked[:_TOKEN_ROWS]
    if rest := ranked[_TOKEN_ROWS:]:
        shown.append((OTHERS, [sum(v[0] for _, v in rest), sum(v[1] for _, v in rest)]))
    rows = [(t.agent_id, t.llm_model, t.calls, t.prompt_tokens, t.completion_tokens,
             t.prompt_tokens + t.completion_tokens) for t in figures.tokens]  # fmt: skip
    return (
        "<h2>Tokens per agent</h2>"
        + (bars("LLM tokens per agent", shown, TOKEN_COLOURS) if shown else '<p class="note">No LLM calls.</p>')
        + table(
            ("agent", "model", "LLM calls", "prompt tokens", "completion tokens", "tokens"),
            rows,
            numeric={2, 3, 4, 5},
            name="tokens",
        )
    )


def _slowest(figures: Figures, context: Context) -> str:
    rows = [(c.timestamp, c.agent_id, c.action, c.duration_ms, c.decision + (f" ({c.error_type})" if c.error_type
             else ""), c.request_id) for c in figures.slowest]  # fmt: skip
    return f"<h2>The {len(rows)} slowest calls</h2>" + table(
        ("time", "agent", "tool", "duration (ms)", "decision", "request id"), rows, numeric={3}, name="slowest"
    )


def _callers(figures: Figures, context: Context) -> str:
    return (
        "<h2>Refused callers and the ledger's own events</h2>"
        '<p class="note">A refused caller is one the agents file gives to no agent: it was turned away (HTTP 403) '
        "before any call, and recorded as a <code>caller-refused</code> event. <code>ledger tail</code> and "
        "<code>ledger stats</code> do not show these.</p>"
        + table(("day", "callers refused"), figures.refused_callers, numeric={1}, name="refused-callers")
        + table(("time", "who was refused, and why"), figures.refused_caller_details, name="refused-caller-details")
        + "<h3>Every event, by kind</h3>"
        + table(("kind", "events"), figures.events, numeric={1}, name="events")
    )


def _totals(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for name, count in pairs:
        totals[name] += count
    return dict(totals)


def _ranked(totals: Mapping[str, int], first: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    order = [n for n in first if n in totals] + sorted(set(totals) - set(first), key=lambda n: (-totals[n], n))
    return [(name, totals[name]) for name in order]


SECTIONS: tuple[Callable[[Figures, Context], str], ...] = (
    _summary, _calls, _refusals, _escalations, _tokens, _slowest, _callers,
)  # fmt: skip
"""The page's sections, in order."""
