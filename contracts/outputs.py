"""The envelope every call returns (the seed's AgentOutput, Foundation Doc section 6)."""

from enum import StrEnum
from typing import Any

from pydantic import Field, PrivateAttr

from contracts._base import Contract
from contracts.errors import ErrorKind
from contracts.plans import Plan

__all__ = ["AgentOutput", "Decision", "ErrorInfo", "Provenance", "SideEffect", "SourceRef", "TokenUsage"]


class Decision(StrEnum):
    EXECUTE = "EXECUTE"
    SKIP = "SKIP"
    ESCALATE = "ESCALATE"
    INSUFFICIENT_INFORMATION = "INSUFFICIENT_INFORMATION"
    ERROR = "ERROR"


class SideEffect(Contract):
    type: str
    target: str
    reversible: bool = True


class ErrorInfo(Contract):
    type: ErrorKind = Field(description="A stable, upper-case kind, e.g. FORBIDDEN_ACTION, INVALID_INPUT, NOT_FOUND.")
    message: str
    triggering_input: str = Field(description="The offending input, truncated and with secrets scrubbed.")
    partial_progress: str
    recommended_action: str


class SourceRef(Contract):
    """One piece of data the answer is built from."""

    kind: str = Field(description='"docs" or "inventory"')
    name: str
    store: str = Field(description='"file" or "vault"')
    version: str | None = Field(default=None, description="Content digest (file store) or KV version (Vault).")


class TokenUsage(Contract):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Provenance(Contract):
    """Where an answer came from, so a human can check it."""

    tool: str
    sources: list[SourceRef] = []
    llm_model: str | None = None
    llm_endpoint_host: str | None = None
    prompt_digest: str | None = None
    usage: TokenUsage | None = None
    llm_attempts: int | None = Field(default=None, description="Requests made to the LLM endpoint, retries included.")
    llm_finish_reason: str | None = Field(default=None, description='Why the model stopped: "stop", "length"...')
    llm_structured_output: bool | None = Field(
        default=None, description="Whether the endpoint was asked for the reply's JSON schema (response_format)."
    )
    ledger_intent_id: int | None = Field(
        default=None, description="Row id of this call's intent in the ledger's call_intents table."
    )
    ledger_seq: int | None = Field(
        default=None,
        description="Place of this call's intent in the ledger's hash chain (`planner-mcp ledger verify` checks it).",
    )
    duration_ms: float | None = None


class AgentOutput(Contract):
    agent_id: str
    version: str
    timestamp: str
    action: str
    decision: Decision
    confidence: float = Field(ge=0.0, le=1.0)
    assumptions: list[str] = []
    dependencies: list[str] = []
    side_effects: list[SideEffect] = []
    notes_for_humans: str = ""
    error: ErrorInfo | None = None
    llm_model: str | None = None
    llm_response: str | None = None
    plan: Plan | None = None
    data: dict[str, Any] | None = None
    request_id: str
    provenance: Provenance | None = None

    _sealed: str | None = PrivateAttr(default=None)

    def sealed_json(self) -> str:
        """The output as JSON, fixed on first use: the ledger's digest and the client's text are the same bytes.

        Call it once the output is final (the gate does, when it records the outcome).
        """
        # Through the private attributes' own dict: pydantic's attribute hooks for them cost more than the rest of
        # this method (a lookup that raises and catches AttributeError on every read).
        private = self.__pydantic_private__
        assert private is not None  # pydantic sets it for a model with private attributes
        sealed: str | None = private.get("_sealed")
        if sealed is None:
            sealed = private["_sealed"] = self.model_dump_json()
        return sealed
