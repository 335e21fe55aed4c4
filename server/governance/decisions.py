"""The decision rules: when a plan or analysis is fit to hand on (EXECUTE) and when a human must look (ESCALATE).

This server executes nothing; EXECUTE only says the output passed every rule. Each rule that fails is named.
"""

from contracts import AgentMetadata, Decision, Plan

__all__ = ["decide", "plan_warnings"]


def decide(confidence: float, agent: AgentMetadata, *, tier_required: int | None = None) -> tuple[Decision, str]:
    """Return the decision and a sentence that says which rules decided it."""
    failed = []
    if confidence < agent.confidence_threshold:
        failed.append(f"confidence {confidence:.2f} is below the threshold {agent.confidence_threshold:.2f}")
    if tier_required is not None and tier_required > agent.tier:
        failed.append(f"the plan needs tier {tier_required}, above this agent's tier {agent.tier}")
    if failed:
        return Decision.ESCALATE, "ESCALATE: " + "; ".join(failed) + "."
    passed = f"confidence {confidence:.2f} meets the threshold {agent.confidence_threshold:.2f}"
    if tier_required is not None:
        passed += f" and the plan needs tier {tier_required}, within this agent's tier {agent.tier}"
    return Decision.EXECUTE, f"EXECUTE: {passed}."


def plan_warnings(plan: Plan) -> list[str]:
    """Steps that cannot be undone and say nothing of how to recover."""
    return [
        f"Step {s.step} is irreversible and has no rollback: review it before anyone runs it."
        for s in plan.steps
        if not s.reversible and not (s.rollback or "").strip()
    ]
