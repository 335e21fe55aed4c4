"""The AgentOutput envelope every call is answered with: results, errors and refusals, scrubbed and bounded."""

import hashlib
import json
from typing import Any

from contracts import AgentMetadata, AgentOutput, Decision, ErrorInfo, ErrorKind, Provenance
from ledger import LedgerError, Scrubber, utc_now
from server.call.failures import REFUSED_BEFORE_WORK, ToolFailure
from server.governance.spec import ToolResult
from server.support.encoding import encodable

__all__ = ["MAX_ARGUMENT_BYTES", "MAX_REFUSED_ARGUMENT_BYTES", "Envelope", "json_size"]

MAX_ARGUMENT_BYTES = 64 * 1024
MAX_REFUSED_ARGUMENT_BYTES = 512
"""The most of a refused call's arguments the ledger keeps (as scrubbed JSON): an excerpt and a digest beyond."""
_MAX_TRIGGER = 300
_SIZED = json.JSONEncoder(ensure_ascii=False, default=str)
"""How arguments are measured: `json.dumps` with these options, its encoder made once (every call is measured)."""


def json_size(value: Any) -> int:
    try:
        return len(_SIZED.encode(value).encode("utf-8", "backslashreplace"))
    except (RecursionError, ValueError):
        return MAX_ARGUMENT_BYTES + 1


class Envelope:
    """Builds the outputs of one agent's calls; text the caller sent is scrubbed before it is echoed."""

    def __init__(self, agent: AgentMetadata, scrubber: Scrubber) -> None:
        self._agent = agent
        self._scrubber = scrubber

    def bounded(self, raw: dict[str, Any]) -> dict[str, Any]:
        if json_size(raw) <= MAX_ARGUMENT_BYTES:
            return raw
        return {"_omitted": f"arguments larger than {MAX_ARGUMENT_BYTES} bytes"}

    def refused_arguments(self, raw: dict[str, Any]) -> dict[str, Any]:
        """What the ledger keeps of a refused call's arguments: them whole when short, else a bounded excerpt of
        their scrubbed JSON with its size and digest, so refusals cannot fill the ledger (and with it, lock every
        caller out). Scrubbed before the cut, so no secret is kept in part; the digest is of the scrubbed text,
        so it cannot be used to test guesses at a secret."""
        try:
            text = json.dumps(self._scrubber.value(raw), sort_keys=True, ensure_ascii=False, default=str)
        except (RecursionError, ValueError):
            return {"_omitted": "arguments nested too deeply to encode"}
        encoded = text.encode("utf-8", "backslashreplace")
        if len(encoded) <= MAX_REFUSED_ARGUMENT_BYTES:
            return raw
        excerpt = encoded[:MAX_REFUSED_ARGUMENT_BYTES].decode(errors="ignore")
        return {"_excerpt": excerpt, "_bytes": len(encoded), "_sha256": hashlib.sha256(encoded).hexdigest()}

    def error_info(
        self,
        kind: ErrorKind,
        message: str,
        raw: dict[str, Any],
        *,
        recommended_action: str,
        partial_progress: str = REFUSED_BEFORE_WORK,
    ) -> ErrorInfo:
        trigger = json.dumps(self._scrubber.value(self.bounded(raw)), ensure_ascii=False, default=str)
        if len(trigger) > _MAX_TRIGGER:
            trigger = trigger[:_MAX_TRIGGER] + "..."
        return ErrorInfo(
            type=kind,
            message=encodable(self._scrubber.text(message)),
            triggering_input=encodable(trigger),
            partial_progress=partial_progress,
            recommended_action=recommended_action,
        )

    def failure_info(self, failure: ToolFailure, raw: dict[str, Any]) -> ErrorInfo:
        return self.error_info(
            failure.kind,
            failure.message,
            raw,
            recommended_action=failure.recommended_action,
            partial_progress=failure.partial_progress,
        )

    def _base(self, action: str, request_id: str) -> dict[str, Any]:
        return {
            "agent_id": self._agent.agent_id,
            "version": self._agent.version,
            "timestamp": utc_now(),
            "action": action,
            "request_id": request_id,
        }

    def error_output(self, action: str, request_id: str, info: ErrorInfo) -> AgentOutput:
        return AgentOutput(
            **self._base(action, request_id),
            decision=Decision.ERROR,
            confidence=0.0,
            error=info,
            notes_for_humans=f"{info.type}: see error for details.",
            provenance=Provenance(tool=action),
        )

    def result(self, action: str, request_id: str, result: ToolResult) -> AgentOutput:
        provenance = Provenance(tool=action, sources=result.sources)
        if (llm := result.llm) is not None:
            reply = llm.reply
            provenance.llm_model = reply.model
            provenance.llm_endpoint_host = llm.endpoint_host
            provenance.prompt_digest = llm.prompt_digest
            provenance.usage = reply.usage
            provenance.llm_attempts = reply.attempts
            provenance.llm_finish_reason = reply.finish_reason
            provenance.llm_structured_output = reply.structured
        output = AgentOutput(
            **self._base(action, request_id),
            decision=result.decision,
            confidence=result.confidence,
            assumptions=result.assumptions,
            side_effects=result.side_effects,
            notes_for_humans=result.notes_for_humans,
            llm_model=provenance.llm_model,
            llm_response=result.llm_response,
            plan=result.plan,
            data=result.data,
            provenance=provenance,
        )
        if result.llm is None:
            return output
        # An answer built from what an endpoint sent is scrubbed once more, whole, before it leaves: a secret
        # learnt during the call (a key read from Vault) is then caught in every field, however it got there.
        # (No field name of the envelope is a secret's, so only text changes.)
        return AgentOutput.model_validate(self._scrubber.value(output.model_dump()))

    def ledger_down_info(self, exc: LedgerError, consequence: str, action: str = "") -> ErrorInfo:
        return ErrorInfo(
            type=ErrorKind.LEDGER_UNAVAILABLE,
            message=f"The audit ledger cannot record this call ({exc}). {consequence}",
            triggering_input=action,
            partial_progress=consequence,
            recommended_action="Ask the operator to fix the ledger (PLANNER_MCP_LEDGER: path, permissions, disk "
            "space); calls succeed again as soon as it can be written.",
        )

    def ledger_down(self, action: str, request_id: str, exc: LedgerError, consequence: str) -> AgentOutput:
        return self.error_output(action, request_id, self.ledger_down_info(exc, consequence, action))

    # -- outcome ----------------------------------------------------------------------------------

    def failure_output(self, action: str, request_id: str, raw: dict[str, Any], exc: Exception) -> AgentOutput:
        """A capability's failure as the output: its own kind for a ToolFailure, INTERNAL_ERROR for a bug (whose
        traceback the gate logs)."""
        if isinstance(exc, ToolFailure):
            return self.error_output(action, request_id, self.failure_info(exc, raw))
        info = self.error_info(
            ErrorKind.INTERNAL_ERROR,
            "The tool failed unexpectedly; the server log has the details.",
            raw,
            recommended_action="Report the request_id to the server's operator.",
            partial_progress="The call's intent was recorded.",
        )
        return self.error_output(action, request_id, info)
