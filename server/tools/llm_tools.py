"""The LLM tools: a plan or an analysis from an OpenAI-compatible endpoint, validated and decided."""

import dataclasses
import json
from typing import Annotated, Any

from pydantic import Field, field_validator

from contracts import Analysis, Decision, Plan, SideEffect, SourceRef, TaskRequest
from server.decisions import decide, plan_warnings
from server.failures import ToolFailure
from server.llm import LLMReply, ParseFailure, analysis_messages, parse_reply, plan_messages, prompt_digest, truncate
from server.tools.spec import LLM_CALL, Args, Deps, ToolResult, ToolSpec

__all__ = ["ANALYZE", "GENERATE_PLAN"]

MAX_DESCRIPTION = 8000
MAX_CONTEXT_BYTES = 32 * 1024
MAX_RAW_REPLY = 4000

Description = Annotated[
    str,
    Field(min_length=1, max_length=MAX_DESCRIPTION, description="What to plan or analyse, in plain language."),
]


class _ContextArgs(Args):
    description: Description
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Optional facts the answer should take into account (JSON object, at most 32 KiB).",
    )

    @field_validator("context")
    @classmethod
    def _context_is_bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            size = len(json.dumps(value, ensure_ascii=False).encode())
        except (RecursionError, ValueError, TypeError) as exc:
            raise ValueError("context must be a plain, not too deeply nested JSON object") from exc
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"context is {size} bytes; the limit is {MAX_CONTEXT_BYTES}")
        return value


class GeneratePlanArgs(_ContextArgs):
    constraints: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=20, description="Optional rules the plan must respect, one per item."
    )


class AnalyzeArgs(_ContextArgs):
    pass


def _scrubbed(messages: list[dict[str, str]], deps: Deps) -> list[dict[str, str]]:
    # Redact before anything leaves for the endpoint: store content may hold what the model must not see.
    return [{**m, "content": deps.scrubber.text(m["content"])} for m in messages]


def _scrubbed_reply(reply: LLMReply, deps: Deps) -> LLMReply:
    # The model may echo what it should not (a key it was shown by mistake, a token from a document).
    return dataclasses.replace(reply, content=deps.scrubber.text(reply.content))


def _llm_result(reply: LLMReply, deps: Deps, messages: list[dict[str, str]], **fields: Any) -> ToolResult:
    effects = [SideEffect(type="llm_inference", target=reply.model, reversible=True)]
    return ToolResult(
        llm_model=reply.model,
        llm_endpoint_host=deps.llm.endpoint_host,
        prompt_digest=prompt_digest(messages),
        usage=reply.usage,
        side_effects=effects + fields.pop("side_effects", []),
        **fields,
    )


def _unparsed(
    reply: LLMReply, deps: Deps, messages: list[dict[str, str]], failure: ParseFailure, **fields: Any
) -> ToolResult:
    return _llm_result(
        reply,
        deps,
        messages,
        decision=Decision.ESCALATE,
        confidence=0.0,
        llm_response=truncate(reply.content, MAX_RAW_REPLY),
        notes_for_humans=f"ESCALATE: {failure}; the raw reply is kept (truncated) in llm_response.",
        **fields,
    )


async def _generate_plan(args: GeneratePlanArgs, deps: Deps) -> ToolResult:
    deps.llm.check_configured()
    assumptions: list[str] = []
    effects: list[SideEffect] = []
    sources: list[SourceRef] = []
    inventory = None
    # Grounding in the inventory is a read of its own, so it happens only where the policy allows that read.
    if not deps.agent.permits("read_inventory"):
        assumptions.append("The policy does not allow reading the inventory; the plan is generic.")
    else:
        try:
            entry = await deps.store.read_inventory(deps.default_inventory)
        except ToolFailure as failure:
            assumptions.append(f"Infrastructure inventory unavailable ({failure.kind}); the plan is generic.")
        else:
            inventory = (entry.name, entry.content)
            effects.append(SideEffect(type="read_inventory", target=f"inventory/{entry.name}", reversible=True))
            sources.append(entry.source)

    request = TaskRequest(
        task_type="generate_plan", description=args.description, context=args.context, constraints=args.constraints
    )
    messages = _scrubbed(plan_messages(deps.agent, request, inventory), deps)
    reply = _scrubbed_reply(await deps.llm.complete(messages, temperature=0.3), deps)
    common: dict[str, Any] = {"side_effects": effects, "sources": sources}
    try:
        plan = parse_reply(reply.content, Plan)
    except ParseFailure as failure:
        return _unparsed(reply, deps, messages, failure, assumptions=assumptions, **common)

    decision, reason = decide(plan.confidence, deps.agent, tier_required=plan.estimated_tier_required)
    notes = " ".join([reason, *plan_warnings(plan)])
    return _llm_result(
        reply,
        deps,
        messages,
        decision=decision,
        confidence=plan.confidence,
        plan=plan,
        llm_response=truncate(reply.content, MAX_RAW_REPLY),
        assumptions=assumptions + plan.assumptions,
        notes_for_humans=notes,
        **common,
    )


async def _analyze(args: AnalyzeArgs, deps: Deps) -> ToolResult:
    deps.llm.check_configured()
    request = TaskRequest(task_type="analyze", description=args.description, context=args.context)
    messages = _scrubbed(analysis_messages(request), deps)
    reply = _scrubbed_reply(await deps.llm.complete(messages, temperature=0.4), deps)
    try:
        analysis = parse_reply(reply.content, Analysis)
    except ParseFailure as failure:
        return _unparsed(reply, deps, messages, failure)
    decision, reason = decide(analysis.confidence, deps.agent)
    return _llm_result(
        reply,
        deps,
        messages,
        decision=decision,
        confidence=analysis.confidence,
        llm_response=analysis.analysis,
        assumptions=analysis.assumptions,
        notes_for_humans=reason
        + (" Uncertainties: " + "; ".join(analysis.uncertainties) if analysis.uncertainties else ""),
    )


GENERATE_PLAN = ToolSpec(
    name="generate_plan",
    title="Generate an implementation plan",
    description=(
        "Ask the planning LLM for a step-by-step implementation plan for an infrastructure task, grounded in the "
        "default inventory. Returns a validated plan in `plan` (steps with rollback, risks, assumptions, the tier "
        "needed to execute) and a decision: EXECUTE only when confidence meets the agent's threshold and the "
        "plan's tier is within the agent's; otherwise ESCALATE, with the reason in `notes_for_humans`. It plans "
        "only: nothing is executed. Every call is recorded in an audit ledger."
    ),
    actions=("generate_plan", "llm_inference"),
    args=GeneratePlanArgs,
    capability=_generate_plan,
    hints=LLM_CALL,
)

ANALYZE = ToolSpec(
    name="analyze",
    title="Analyse a question",
    description=(
        "Ask the planning LLM for a structured technical analysis of a question about the infrastructure, with "
        "the context you pass. Returns the analysis text in `llm_response`, with confidence and assumptions; "
        "below the agent's confidence threshold the decision is ESCALATE. Executes nothing. Every call is "
        "recorded in an audit ledger."
    ),
    actions=("read_docs", "llm_inference"),
    args=AnalyzeArgs,
    capability=_analyze,
    hints=LLM_CALL,
)
