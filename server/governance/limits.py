"""The policy's limits on LLM use: which models, and how many tokens a day (reserved before they are spent)."""

import json
import re
from dataclasses import dataclass
from typing import Any

from contracts import AgentMetadata, ErrorKind, TokenUsage
from ledger import BudgetExhausted, Ledger, Reservation
from server.call.failures import REFUSED_BEFORE_WORK, ToolFailure
from server.call.intent_first import run_blocking

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "TokenBudget",
    "budget_exhausted",
    "model_answered",
    "model_refused",
    "prompt_token_bound",
    "worst_case",
]

MESSAGE_OVERHEAD_TOKENS = 8
"""Tokens a chat format may add around each message (role markers, separators): generous for every tokenizer."""


def model_refused(agent: AgentMetadata, model: str | None) -> ToolFailure | None:
    """A model the policy does not list for this agent's tier is refused (an unconfigured model is not ours)."""
    if model is None or agent.permits_model(model):
        return None
    allowed = ", ".join(sorted(agent.allowed_models() or ())) or "none"
    return ToolFailure(
        ErrorKind.MODEL_NOT_ALLOWED,
        f"The configured model {model!r} is not allowed for tier {agent.tier} by the policy of agent "
        f"{agent.agent_id} (allowed: {allowed}).",
        recommended_action="Ask the operator to set PLANNER_MCP_MODEL to an allowed model, or to list this model "
        "for the tier in the policy's models_by_tier.",
        partial_progress=REFUSED_BEFORE_WORK,
    )


_SNAPSHOT = re.compile(r"(?P<model>.+)-(?:\d{4}-\d{2}-\d{2}|\d{8})")
"""A dated snapshot of a model, as endpoints name the model that answered (`gpt-4o-2024-08-06` for `gpt-4o`)."""


def model_answered(agent: AgentMetadata, model: str) -> str | None:
    """Why the model the endpoint says answered is not one this agent's tier may use, or None when it is.

    The request named an allowed model, but the endpoint decides which one answers (a router's fallback, an
    alias): what the policy allows is checked again against what came back. A dated snapshot of an allowed
    model is that model; any other name is not."""
    allowed = agent.allowed_models()
    if allowed is None or model in allowed:
        return None
    if (snapshot := _SNAPSHOT.fullmatch(model)) is not None and snapshot["model"] in allowed:
        return None
    return (
        f"the endpoint answered with the model {model!r}, which the policy of agent {agent.agent_id} does not list "
        f"for tier {agent.tier} (allowed: {', '.join(sorted(allowed)) or 'none'})."
    )


def worst_case(prompt_bound: int, max_tokens: int) -> TokenUsage:
    """What a call is counted at when the endpoint's report of its usage cannot be believed: all it reserved."""
    return TokenUsage(prompt_tokens=prompt_bound, completion_tokens=max_tokens, total_tokens=prompt_bound + max_tokens)


def budget_exhausted(agent: AgentMetadata, exhausted: BudgetExhausted) -> ToolFailure:
    """The refusal of an LLM call once the day's tokens, spent and reserved by other calls, reach the budget."""
    return ToolFailure(
        ErrorKind.TOKEN_BUDGET_EXHAUSTED,
        f"Agent {agent.agent_id} has spent or reserved {exhausted.committed} of its {exhausted.budget} LLM tokens "
        f"for {exhausted.day} (UTC).",
        recommended_action="Wait for the calls under way to finish or for the next UTC day, use the read tools "
        "meanwhile, or ask the operator to raise daily_token_budget in the policy.",
        partial_progress="No LLM request was sent.",
    )


def prompt_token_bound(messages: list[dict[str, str]], schema: dict[str, Any] | None) -> int:
    """The most tokens a prompt can count, for any tokenizer: one per UTF-8 byte of what the model reads (every
    token covers at least one byte), plus each message's framing, plus the reply schema it may be sent."""
    size = sum(len(message["content"].encode()) + MESSAGE_OVERHEAD_TOKENS for message in messages)
    if schema is not None:
        size += len(json.dumps(schema, separators=(",", ":")).encode())
    return size


@dataclass(frozen=True)
class TokenBudget:
    """One LLM call's hold on its agent's daily budget: `max_tokens` reserved with the intent (by the gate),
    then its prompt's size here, just before the request is sent."""

    ledger: Ledger
    agent: AgentMetadata
    request_id: str

    @property
    def budget(self) -> int:
        assert self.agent.daily_token_budget is not None  # a TokenBudget exists only under a budget
        return self.agent.daily_token_budget

    async def reserve_prompt(self, tokens: int) -> None:
        """Reserve `tokens` more, or fail with TOKEN_BUDGET_EXHAUSTED before anything is sent."""
        reservation = Reservation(tokens=tokens, budget=self.budget)
        try:
            await run_blocking(lambda: self.ledger.reserve_tokens(self.request_id, self.agent.agent_id, reservation))
        except BudgetExhausted as exc:
            raise budget_exhausted(self.agent, exc) from None
