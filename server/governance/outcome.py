"""How every call through the gate ends: its outcome recorded before the reply leaves, and its log line.

Fail closed: an outcome the ledger cannot take as it is (a value it cannot store, a bug) is replaced by an
INTERNAL_ERROR outcome, recorded in its place, so the call ends with an outcome and the client with an output,
not a protocol error. Only a ledger that records nothing withholds the result.
"""

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts import AgentMetadata, AgentOutput, Decision, ErrorKind, Provenance
from ledger import Ledger, LedgerError, Outcome, Position
from server.governance.envelope import Envelope
from server.telemetry import NO_SIGNALS, CallEnded, Signals

__all__ = ["GATE_LOGGER", "CallContext", "Closer", "Ending"]

GATE_LOGGER = "server.gate"
"""The logger every line of the gate is written under, the line each call ends with above all: tests and
operators' log collectors match on this name, so it stays as it is wherever the gate's modules live."""

logger = logging.getLogger(GATE_LOGGER)


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the gate knows of a call from its start, and writes into each of its ledger rows."""

    request_id: str
    started: float
    """`time.perf_counter()` when the gate took the call: its duration is counted from here."""
    client_request_id: str | None
    notes: str
    raw: dict[str, Any]
    """The arguments as the caller sent them, before validation."""
    method: str = "tools/call"
    """The MCP method that reached the gate."""
    known: str | None = None
    """The registered name the caller named, or None when it named none of this server's."""


@dataclass(frozen=True, slots=True)
class Ending:
    """A call to close: its output, what the gate knew of it, its arguments as recorded, and its intent's place
    (None for a refusal)."""

    output: AgentOutput
    context: CallContext
    arguments: dict[str, Any]
    intent: Position | None


class Closer:
    """Ends the calls of one gate: records each outcome (blocking: in a worker thread) and logs the call."""

    def __init__(
        self,
        *,
        agent: AgentMetadata,
        ledger: Ledger,
        out: Envelope,
        tools_digest: str,
        signals: Signals = NO_SIGNALS,
    ) -> None:
        self._agent = agent
        self._ledger = ledger
        self._out = out
        self._tools_digest = tools_digest
        self._signals = signals

    def close(
        self,
        output: AgentOutput,
        context: CallContext,
        arguments: dict[str, Any],
        intent: Position | None,
        *,
        refused: bool = False,
    ) -> AgentOutput:
        """Record the outcome and return the output, or the error that replaces it when the outcome cannot be
        recorded. `arguments` are the call's as the ledger keeps them; `intent` is None for a refusal."""
        done = self.close_all([Ending(output, context, arguments, intent)], refused=refused)[0]
        if isinstance(done, BaseException):
            raise done
        return done

    def close_all(self, ends: Sequence[Ending], *, refused: bool = False) -> list[AgentOutput | BaseException]:
        """`close` for several calls at once: their outcomes share one transaction (see `Ledger.record_outcomes`).
        For each, what `close` returns, or the exception it would raise (returned, not raised)."""
        made: list[tuple[Ending, float, Outcome | Exception]] = []
        for end in ends:
            duration_ms = round((time.perf_counter() - end.context.started) * 1000, 3)
            _place(end.output, end.intent, duration_ms)
            try:
                made.append((end, duration_ms, self._outcome(end.output, end, refused, duration_ms)))
            except Exception as exc:  # an output the outcome cannot be made of: as one the ledger cannot take
                made.append((end, duration_ms, exc))
        recorded = iter(self._ledger.record_outcomes([m for _, _, m in made if isinstance(m, Outcome)]))
        done: list[AgentOutput | BaseException] = []
        for end, duration_ms, m in made:
            result = next(recorded) if isinstance(m, Outcome) else m
            try:
                output = self._ended(end, result, refused, duration_ms)
            except BaseException as exc:  # a bug: this call's, not the others'
                done.append(exc)
                continue
            self._tell(output, end.context, refused)
            done.append(output)
        return done

    def _ended(self, end: Ending, result: Position | BaseException, refused: bool, duration_ms: float) -> AgentOutput:
        """The output whose outcome is now recorded (`result` is its place): the call's own, or the INTERNAL_ERROR
        recorded in its place when the ledger could not take it as it was; or the error that withholds it."""
        output = end.output
        if isinstance(result, LedgerError) and result.reason != "value":
            return self._withheld(output, result, refused=refused)  # the ledger records nothing: no other would land
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            output = self._unrecordable(output, end.arguments, result)
            try:
                self._ledger.record_outcome(self._outcome(output, end, refused, duration_ms))
            except LedgerError as exc:
                return self._withheld(output, exc, refused=refused)
        _log_call(output, duration_ms)
        return output

    def _tell(self, output: AgentOutput, context: CallContext, refused: bool) -> None:
        """Monitoring hears how the call ended, its outcome written; its own failure never becomes the call's."""
        if self._signals is NO_SIGNALS:
            return
        usage = output.provenance.usage if output.provenance else None
        ended = CallEnded(
            agent_id=self._agent.agent_id,
            tool=context.known,
            method=context.method,
            decision=output.decision.value,
            error_kind=output.error.type.value if output.error else None,
            refused=refused,
            duration_s=time.perf_counter() - context.started,
            model=output.llm_model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )
        try:
            self._signals.call_ended(ended)
        except Exception:
            logger.exception("Monitoring failed to take the end of call %s", output.request_id)

    def _withheld(self, output: AgentOutput, exc: LedgerError, *, refused: bool) -> AgentOutput:
        logger.error("Withholding the result of %s: the outcome could not be recorded: %s", output.action, exc)
        consequence = (
            "The call was refused." if refused else "The result was withheld because it could not be recorded."
        )
        return self._out.ledger_down(output.action, output.request_id, exc, consequence)

    def _unrecordable(self, output: AgentOutput, arguments: dict[str, Any], exc: Exception) -> AgentOutput:
        """The INTERNAL_ERROR output recorded in place of one the ledger could not take."""
        logger.error(
            "The outcome of %s (request %s) could not be recorded as it was",
            output.action,
            output.request_id,
            exc_info=exc,
        )
        info = self._out.error_info(
            ErrorKind.INTERNAL_ERROR,
            "The call's outcome could not be recorded as it was; the result is withheld and this error recorded "
            "instead. The server log has the details.",
            arguments,
            recommended_action="Report the request_id to the server's operator; calling again may succeed.",
            partial_progress="The call ran; its result is not returned, since it could not be recorded.",
        )
        replaced = self._out.error_output(output.action, output.request_id, info)
        if (was := output.provenance) is not None:  # where the call stands in the ledger, nothing it claimed
            replaced.provenance = Provenance(
                tool=was.tool,
                ledger_intent_id=was.ledger_intent_id,
                ledger_seq=was.ledger_seq,
                duration_ms=was.duration_ms,
            )
        return replaced

    def _outcome(self, output: AgentOutput, end: Ending, refused: bool, duration_ms: float) -> Outcome:
        context, intent = end.context, end.intent
        usage = output.provenance.usage if output.provenance else None
        error = output.error
        return Outcome(
            request_id=output.request_id,
            timestamp=output.timestamp,
            agent_id=output.agent_id,
            agent_version=output.version,
            tier=self._agent.tier,
            action=output.action,
            decision=output.decision.value,
            confidence=output.confidence,
            success=output.decision is not Decision.ERROR,
            arguments=end.arguments,
            tools_digest=self._tools_digest,
            notes=context.notes,
            client_request_id=context.client_request_id,
            intent_id=intent.id if intent else None,
            refused=refused,
            error_type=error.type.value if error else None,
            error_message=error.message if error else None,
            duration_ms=duration_ms,
            output_digest="sha256:" + hashlib.sha256(output.sealed_json().encode()).hexdigest(),
            llm_model=output.llm_model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )


def _place(output: AgentOutput, intent: Position | None, duration_ms: float) -> None:
    """Say in the output's provenance where the call stands in the ledger, and how long it took."""
    provenance = output.provenance
    assert provenance is not None  # every output the gate builds carries one
    provenance.ledger_intent_id = intent.id if intent else None
    provenance.ledger_seq = intent.seq if intent else None
    provenance.duration_ms = duration_ms


def _log_call(output: AgentOutput, duration_ms: float) -> None:
    """The call's one log line. Kind and timing only: arguments and payloads are the caller's data and stay in
    the ledger, scrubbed."""
    if not logger.isEnabledFor(logging.INFO):  # the default (WARNING): nothing to build
        return
    error = output.error
    fields = {
        "request_id": output.request_id,
        "action": output.action,
        "decision": output.decision.value,
        "error_type": error.type.value if error else None,
        "duration_ms": duration_ms,
    }
    logger.info(
        "%s %s %s%s %.1fms",
        output.request_id,
        output.action,
        output.decision.value,
        f" {error.type}" if error else "",
        duration_ms,
        extra=fields,
    )
