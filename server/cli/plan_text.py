"""An AgentOutput of `generate_plan` or `analyze` as a person reads it: what was asked, the decision and the
rule that decided it, the plan's numbered steps with their rollback, what was assumed and risked, and for an
error what to do about it.

Most of it was written by a model (a title, a step, the analysis), so none of it may drive the terminal or
pass for a line of ours. Every line goes out through `server.support.terminal.say`, which shows each control,
bidirectional or invisible character as an escape; a value meant to be one line (a step, a risk) keeps its
line breaks as `\\n`, and the analysis, which is prose, is split at its line breaks and indented, so no text
of the model's starts at the margin where the headings are.
"""

from collections.abc import Iterable

from contracts import AgentOutput, Decision, ErrorInfo, Plan, Provenance

__all__ = ["render"]

_INDENT = "  "
_WHAT_IT_MEANS = {
    Decision.EXECUTE: " (it passed every rule; nothing was run, this server only plans)",
    Decision.ESCALATE: ": a human must decide (it did not pass every rule, so it is not to be acted on as it is)",
    Decision.ERROR: " (the call failed)",
}


def render(output: AgentOutput, asked: str) -> list[str]:
    """The lines to print for `output`, the answer to `asked` (the description or the question given)."""
    lines = [*_heading(output, asked), "", *_decision(output)]
    if output.error is not None:
        return [*lines, "", *_error(output.error)]
    if output.plan is not None:
        lines += ["", *_steps(output.plan)]
    elif output.llm_response:
        label = "Analysis" if output.action == "analyze" else "The model's reply (no plan could be read from it)"
        lines += ["", f"{label}:", *(_INDENT + line for line in output.llm_response.splitlines())]
    lines += _listed("Assumptions", output.assumptions)
    if output.plan is not None:
        lines += _listed("Uncertainties", output.plan.uncertainties)
        lines += _listed("Risks", output.plan.risks)
        lines += ["", f"Tier needed to carry it out: {output.plan.estimated_tier_required}"]
    return [*lines, "", *_provenance(output)]


def _heading(output: AgentOutput, asked: str) -> list[str]:
    if output.plan is not None:
        return [f"Plan: {output.plan.title}", *([_INDENT + output.plan.summary] if output.plan.summary else [])]
    what = "Question" if output.action == "analyze" else "Task"
    return [f"{what}: {asked}"]


def _decision(output: AgentOutput) -> list[str]:
    decided = f"Decision:    {output.decision.value}{_WHAT_IT_MEANS.get(output.decision, '')}"
    if output.error is not None:  # its notes only point to the error, printed below; its confidence is 0
        return [decided]
    # The notes open with the decision the rule gave ("ESCALATE: confidence 0.40 is below ..."): shown once.
    rule = output.notes_for_humans.removeprefix(f"{output.decision.value}: ")
    return [decided, *([f"Why:         {rule}"] if rule else []), f"Confidence:  {output.confidence:.2f}"]


def _steps(plan: Plan) -> list[str]:
    lines = ["Steps:"]
    for step in plan.steps:
        undo = f"rollback: {step.rollback}" if (step.rollback or "").strip() else "rollback: none given"
        kind = "" if step.reversible else "[irreversible] "
        lines += [f"{step.step:>3}. {kind}{step.action}", f"     {undo}"]
    return lines


def _error(error: ErrorInfo) -> list[str]:
    return [
        f"Error:       {error.type.value}: {error.message}",
        f"What to do:  {error.recommended_action}",
        f"Done so far: {error.partial_progress}",
    ]


def _listed(label: str, items: Iterable[str]) -> list[str]:
    items = list(items)
    return ["", f"{label}:", *(f"{_INDENT}- {item}" for item in items)] if items else []


def _provenance(output: AgentOutput) -> list[str]:
    """Where the answer came from and where the ledger keeps it, for whoever checks it later."""
    seen: Provenance | None = output.provenance
    model = f"{output.llm_model} at {seen.llm_endpoint_host}" if seen and seen.llm_endpoint_host else output.llm_model
    lines = [f"Model:       {model}"] if model else []
    if seen is not None and seen.sources:
        lines.append("Grounded in: " + ", ".join(f"{s.kind} {s.name} ({s.store})" for s in seen.sources))
    seq = f"seq {seen.ledger_seq}, " if seen is not None and seen.ledger_seq is not None else ""
    return [*lines, f"Recorded:    ledger {seq}request {output.request_id}"]
