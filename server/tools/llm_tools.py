"""The LLM tools: a plan or an analysis from an OpenAI-compatible endpoint, validated and decided."""

import dataclasses
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from contracts import Analysis, Decision, Plan, SideEffect, TaskRequest
from contracts.names import EntryName
from server.governance.decisions import decide, plan_warnings
from server.governance.limits import model_answered, prompt_token_bound, worst_case
from server.governance.spec import LLM_CALL, Args, Deps, LLMCall, Returns, ToolResult, ToolSpec
from server.llm import LLMReply, ParseFailure, analysis_messages, parse_reply, plan_messages, prompt_digest, truncate
from server.tools.grounding import Grounding

__all__ = ["ANALYZE", "GENERATE_PLAN"]

MAX_DESCRIPTION = 8000
MAX_CONTEXT_BYTES = 32 * 1024
MAX_RAW_REPLY = 4000
MAX_PARSED_REPLY = 200_000
"""A reply longer than this is not parsed: no plan is that long, and parsing it would only cost time."""
MAX_DOCS = 5

_M = TypeVar("_M", bound=BaseModel)

Description = Annotated[
    str,
    Field(min_length=1, max_length=MAX_DESCRIPTION, description="What to plan or analyse, in plain language."),
]


# `context` as facts, each a closed object: the form a framework in OpenAI's strict mode can send (it cannot send
# an object of any keys). The docstring is the schema's description, for the model.
class ContextFact(BaseModel):
    """One fact: a key and its value."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200)
    value: str


class _ContextArgs(Args):
    description: Description
    # A JSON object (what callers sent before strict mode was considered) is accepted and recorded as it was; the
    # schema shows the list of facts, which converts to strict mode. Either way the model is shown one object.
    context: list[ContextFact] | SkipJsonSchema[dict[str, Any]] = Field(
        default_factory=dict,
        description="Optional facts the answer should take into account, as key/value pairs (a JSON object is "
        "accepted too; at most 32 KiB).",
    )
    docs: list[EntryName] = Field(
        default_factory=list,
        max_length=MAX_DOCS,
        description=f"Optional runbooks (names from list_docs) the model should follow, at most {MAX_DOCS}. Each "
        "is read from the store and given to the model as reference data.",
    )

    @field_validator("context")
    @classmethod
    def _context_is_bounded(cls, value: list[ContextFact] | dict[str, Any]) -> dict[str, Any]:
        if isinstance(value, list):
            value = _as_object(value)
        try:
            size = len(json.dumps(value, ensure_ascii=False).encode())
        except (RecursionError, ValueError, TypeError) as exc:
            raise ValueError("context must be a plain, not too deeply nested JSON object") from exc
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(f"context is {size} bytes; the limit is {MAX_CONTEXT_BYTES}")
        return value

    @property
    def facts(self) -> dict[str, Any]:
        """The context as one object, whichever form it was sent in: the validator made it one."""
        assert isinstance(self.context, dict)
        return self.context


def _as_object(facts: list[ContextFact]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for fact in facts:
        if fact.key in found:
            raise ValueError(f"context names the key {fact.key[:40]!r} more than once")
        found[fact.key] = fact.value
    return found


class GeneratePlanArgs(_ContextArgs):
    constraints: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=20, description="Optional rules the plan must respect, one per item."
    )


class AnalyzeArgs(_ContextArgs):
    pass


def _context(args: _ContextArgs, deps: Deps, grounding: Grounding) -> dict[str, Any]:
    """The caller's context as the model is shown it: scrubbed by key as well (`{"password": ...}`), as the
    ledger scrubs it, since the prompt's own scrubbing sees only text."""
    context, redacted = deps.scrubber.redact(args.facts)
    grounding.redacted(redacted, "the context")
    return dict(context)


def _scrubbed(messages: list[dict[str, str]], deps: Deps) -> list[dict[str, str]]:
    # Redact before anything leaves for the endpoint: store content may hold what the model must not see.
    return [{**m, "content": deps.scrubber.text(m["content"])} for m in messages]


async def _ask(
    messages: list[dict[str, str]], schema: type[_M], deps: Deps, grounding: Grounding, *, temperature: float
) -> tuple[LLMReply, LLMCall]:
    sent = _scrubbed(messages, deps)
    prompt_bound = prompt_token_bound(sent, schema.model_json_schema())
    deps.llm.check_breaker()  # an open breaker refuses before the prompt's tokens are reserved for a request
    if deps.budget is not None:
        await deps.budget.reserve_prompt(prompt_bound)
    reply = await deps.llm.complete(sent, temperature=temperature, schema=schema, progress=deps.progress)
    # The model may echo what it should not (a key it was shown by mistake, a token from a document), and so may
    # the endpoint, in any field it fills.
    content, redacted = deps.scrubber.redact(reply.content)
    grounding.redacted(redacted, "the model's reply", ".")
    reply = dataclasses.replace(
        reply,
        content=content,
        model=deps.scrubber.text(reply.model),
        finish_reason=None if reply.finish_reason is None else deps.scrubber.text(reply.finish_reason),
    )
    if reply.usage_problem is not None:
        worst = worst_case(prompt_bound, deps.llm.config.max_tokens)
        reply = dataclasses.replace(reply, usage=worst)
        grounding.assumptions.append(
            f"The endpoint reported a token usage that cannot be right ({reply.usage_problem}); the call is "
            f"counted at the most it could have cost, {worst.total_tokens} tokens."
        )
    call = LLMCall(reply=reply, endpoint_host=deps.llm.endpoint_host, prompt_digest=prompt_digest(sent))
    return reply, call


def _parse(reply: LLMReply, model: type[_M], deps: Deps) -> _M:
    """The reply as `model`, or a ParseFailure that says why not, including the reply being cut off."""
    if len(reply.content) > MAX_PARSED_REPLY:
        raise ParseFailure(f"the reply is {len(reply.content)} characters, more than the {MAX_PARSED_REPLY} parsed")
    try:
        return parse_reply(reply.content, model)
    except ParseFailure as failure:
        if reply.finish_reason == "length":
            cap = deps.llm.config.max_tokens
            raise ParseFailure(f"{failure} (the reply was cut off at the {cap}-token limit)") from None
        raise


def _result(reply: LLMReply, call: LLMCall, grounding: Grounding, deps: Deps, **fields: Any) -> ToolResult:
    effects = [SideEffect(type="llm_inference", target=reply.model), *grounding.side_effects]
    assumptions = grounding.assumptions + fields.pop("assumptions", [])
    if (refused := model_answered(deps.agent, reply.model)) is not None:
        # The answer may be sound, but it is not from a model this tier may use: a human decides.
        fields["decision"] = Decision.ESCALATE
        fields["notes_for_humans"] = f"ESCALATE: {refused} Otherwise: {fields.get('notes_for_humans', '')}"
    return ToolResult(llm=call, side_effects=effects, sources=grounding.sources, assumptions=assumptions, **fields)


def _unparsed(reply: LLMReply, call: LLMCall, grounding: Grounding, deps: Deps, failure: ParseFailure) -> ToolResult:
    return _result(
        reply,
        call,
        grounding,
        deps,
        decision=Decision.ESCALATE,
        confidence=0.0,
        llm_response=truncate(reply.content, MAX_RAW_REPLY),
        notes_for_humans=f"ESCALATE: {failure}; the raw reply is kept (truncated) in llm_response.",
    )


async def _answered(
    messages: list[dict[str, str]],
    schema: type[_M],
    deps: Deps,
    grounding: Grounding,
    *,
    temperature: float,
    fields: Callable[[_M, LLMReply], dict[str, Any]],
) -> ToolResult:
    """The model's answer as `schema`, turned into the result's `fields`; an answer that cannot be read as
    `schema` is escalated with its raw reply instead."""
    reply, call = await _ask(messages, schema, deps, grounding, temperature=temperature)
    try:
        answer = _parse(reply, schema, deps)
    except ParseFailure as failure:
        return _unparsed(reply, call, grounding, deps, failure)
    return _result(reply, call, grounding, deps, **fields(answer, reply))


async def _generate_plan(args: GeneratePlanArgs, deps: Deps) -> ToolResult:
    deps.llm.check_configured()
    grounding = Grounding()
    await grounding.add_docs(args.docs, deps)
    # Grounding in the inventory is a read of its own, so it happens only where the policy allows that read.
    await grounding.add_inventory(deps)
    context = _context(args, deps, grounding)
    request = TaskRequest(
        task_type="generate_plan", description=args.description, context=context, constraints=args.constraints
    )
    messages = plan_messages(deps.agent, request, grounding.inventory, grounding.docs)

    def fields(plan: Plan, reply: LLMReply) -> dict[str, Any]:
        decision, reason = decide(plan.confidence, deps.agent, tier_required=plan.estimated_tier_required)
        notes = " ".join([reason, *plan_warnings(plan)])
        llm_response = truncate(reply.content, MAX_RAW_REPLY)
        return {
            "decision": decision,
            "confidence": plan.confidence,
            "plan": plan,
            "llm_response": llm_response,
            "assumptions": plan.assumptions,
            "notes_for_humans": notes,
        }

    return await _answered(messages, Plan, deps, grounding, temperature=0.3, fields=fields)


async def _analyze(args: AnalyzeArgs, deps: Deps) -> ToolResult:
    deps.llm.check_configured()
    grounding = Grounding()
    await grounding.add_docs(args.docs, deps)
    request = TaskRequest(task_type="analyze", description=args.description, context=_context(args, deps, grounding))
    messages = analysis_messages(request, grounding.docs)

    def fields(analysis: Analysis, reply: LLMReply) -> dict[str, Any]:
        decision, reason = decide(analysis.confidence, deps.agent)
        uncertainties = " Uncertainties: " + "; ".join(analysis.uncertainties) if analysis.uncertainties else ""
        return {
            "decision": decision,
            "confidence": analysis.confidence,
            "llm_response": analysis.analysis,
            "assumptions": analysis.assumptions,
            "notes_for_humans": reason + uncertainties,
        }

    return await _answered(messages, Analysis, deps, grounding, temperature=0.4, fields=fields)


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
    returns=Returns(plan=True, llm_response=f"The model's reply as it came, cut at {MAX_RAW_REPLY} characters."),
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
    returns=Returns(llm_response="The analysis, in Markdown (or the model's raw reply when it could not be read)."),
)
