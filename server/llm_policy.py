"""The policy's limits on LLM use, checked before a call is admitted: which models, and how many tokens a day."""

from contracts import AgentMetadata
from server.failures import ToolFailure

__all__ = ["budget_exhausted", "model_refused"]


def model_refused(agent: AgentMetadata, model: str | None) -> ToolFailure | None:
    """A model the policy does not list for this agent's tier is refused (an unconfigured model is not ours)."""
    if model is None or agent.permits_model(model):
        return None
    allowed = ", ".join(sorted(agent.allowed_models() or ())) or "none"
    return ToolFailure(
        "MODEL_NOT_ALLOWED",
        f"The configured model {model!r} is not allowed for tier {agent.tier} by the policy of agent "
        f"{agent.agent_id} (allowed: {allowed}).",
        recommended_action="Ask the operator to set PLANNER_MCP_MODEL to an allowed model, or to list this model "
        "for the tier in the policy's models_by_tier.",
    )


def budget_exhausted(agent: AgentMetadata, spent: int, day: str) -> ToolFailure | None:
    """Refused once the tokens recorded for `day` (UTC) reach the daily budget.

    Calls already in flight when the budget runs out still finish, so a day may overshoot by at most the
    tokens of the calls running at that moment (each bounded by PLANNER_MCP_LLM_MAX_TOKENS plus its prompt).
    """
    budget = agent.daily_token_budget
    if budget is None or spent < budget:
        return None
    return ToolFailure(
        "TOKEN_BUDGET_EXHAUSTED",
        f"Agent {agent.agent_id} has spent {spent} of its {budget} LLM tokens for {day} (UTC).",
        recommended_action="Wait for the next UTC day, use the read tools meanwhile, or ask the operator to raise "
        "daily_token_budget in the policy.",
    )
