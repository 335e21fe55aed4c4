"""Whether a call may go on, before anything is recorded as its intent: the allowlist, the arguments, the LLM's
limits. What is refused here reaches the ledger as a refusal, with nothing read and nothing asked."""

from typing import Any

from pydantic import ValidationError

from contracts import AgentMetadata, ErrorInfo, ErrorKind
from contracts.names import INVALID_NAME_ERROR
from ledger import Reservation
from server.config.settings import LLMConfig
from server.governance.envelope import MAX_ARGUMENT_BYTES, Envelope, json_size
from server.governance.limits import model_refused
from server.governance.spec import Catalogue, ToolSpec

__all__ = ["MAX_NAME", "Admission", "Refusal"]

MAX_NAME = 128
"""The most of a name the caller sent that is echoed or recorded."""


class Refusal(Exception):
    """The call is refused: `info` says why, for the caller and the ledger."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class Admission:
    """The rules a call must pass to be admitted, for one agent."""

    def __init__(self, agent: AgentMetadata, out: Envelope, llm: LLMConfig) -> None:
        self._agent = agent
        self._out = out
        self._llm = llm

    def admit(
        self, name: str, raw: dict[str, Any], spec: ToolSpec | None, catalogue: Catalogue
    ) -> tuple[ToolSpec, Any]:
        # Checked again at call time: the tool list a client saw is not proof of what it may call now.
        if spec is None or not self._agent.permits_all(spec.actions):
            raise Refusal(self._forbidden(name, raw, spec, catalogue))
        if (size := json_size(raw)) > MAX_ARGUMENT_BYTES:
            raise Refusal(
                self._out.error_info(
                    ErrorKind.INVALID_INPUT,
                    f"The arguments are larger than {MAX_ARGUMENT_BYTES} bytes{_largest(raw, size)}.",
                    raw,
                    recommended_action="Send shorter arguments; pass only what the tool needs.",
                )
            )
        try:
            return spec, spec.args.model_validate(raw)
        except ValidationError as exc:
            # Field names and rules only: the rejected values are the caller's data.
            errors = exc.errors(include_url=False, include_input=False)
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(arguments)'}: {e['msg']}" for e in errors)
            # A name that tries to leave its folder is a distinct, named refusal: auditors look for these.
            kind = (
                ErrorKind.INVALID_NAME
                if any(e["type"] == INVALID_NAME_ERROR for e in errors)
                else ErrorKind.INVALID_INPUT
            )
            raise Refusal(
                self._out.error_info(
                    kind,
                    f"Invalid arguments for {catalogue.kind} {name}: {problems}.",
                    raw,
                    recommended_action=f"Fix the arguments to match the {catalogue.kind}'s input schema and call "
                    "again.",
                )
            ) from None

    def _forbidden(self, name: str, raw: dict[str, Any], spec: ToolSpec | None, catalogue: Catalogue) -> ErrorInfo:
        shown = repr(name[:MAX_NAME])
        kind = catalogue.kind
        if name in self._agent.forbidden_actions:
            message = (
                f"Action {shown} is forbidden for agent {self._agent.agent_id} (tier {self._agent.tier}); "
                "this server has no implementation of it."
            )
        elif spec is None:
            message = f"{shown} is not a {kind} of this server."
        else:
            message = f"Action {shown} is not permitted for agent {self._agent.agent_id} (tier {self._agent.tier})."
        return self._out.error_info(
            ErrorKind.FORBIDDEN_ACTION,
            message,
            raw,
            recommended_action=f"Use one of this server's {kind}s ({', '.join(catalogue.specs) or 'none'}), or "
            "escalate to a human or a higher-tier agent.",
        )

    def llm(self, raw: dict[str, Any]) -> Reservation | None:
        """The policy's limits on LLM use. The model must be listed for this tier: checked here. Under a daily
        budget, the call's completion (`max_tokens`) is reserved with its intent, in the same transaction that
        checks the budget; its prompt is reserved before the request (see `ledger.budget`)."""
        agent = self._agent
        if (failure := model_refused(agent, self._llm.model)) is not None:
            raise Refusal(self._out.failure_info(failure, raw))
        if agent.daily_token_budget is None:
            return None
        return Reservation(tokens=self._llm.max_tokens, budget=agent.daily_token_budget)


def _largest(raw: dict[str, Any], size: int) -> str:
    """Which argument made them too large, so the caller knows what to shorten (its name bounded, like any echo)."""
    if not raw:
        return ""
    name, largest = max(((key, json_size(value)) for key, value in raw.items()), key=lambda kv: kv[1])
    shown = repr(str(name)[:40]) + ("..." if len(str(name)) > 40 else "")
    return f" ({size} bytes in all; {shown} alone is {largest})" if largest > size // 2 else f" ({size} bytes in all)"
