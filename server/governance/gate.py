"""The gate every tools/call, prompts/get and resources/read passes: allowlist, argument validation, intent,
capability, envelope, outcome.

Fail closed: when the intent cannot be recorded nothing is read and no LLM is called; when the outcome
cannot be recorded the result is withheld. Refusals, including names that are no tool, prompt or resource of
this server, are recorded like any other call.
"""

import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from contracts import AgentMetadata, AgentOutput, Decision, Provenance
from ledger import BudgetExhausted, Intent, Ledger, LedgerError, Outcome, Position, Reservation
from server.call.callers import MAX_VIA
from server.call.intent_first import PendingIntent, pending_intent
from server.call.progress import Progress, ReportProgress
from server.call.stopping import stop_reason
from server.governance.admission import MAX_NAME, Admission, Refusal
from server.governance.envelope import Envelope, now
from server.governance.limits import TokenBudget, budget_exhausted
from server.governance.spec import Catalogue, Deps, ToolResult, ToolSpec
from server.support.encoding import encodable

__all__ = ["Gate"]

logger = logging.getLogger("server.gate")  # the name log collectors match the one line per call by

LLM_ACTION = "llm_inference"


class Gate:
    def __init__(
        self,
        *,
        agent: AgentMetadata,
        tools: Mapping[str, ToolSpec],
        deps: Deps,
        ledger: Ledger,
        tools_digest: str,
        notes: str = "",
    ) -> None:
        """`notes` go into every ledger row of every call: conditions an auditor must see (TLS unverified)."""
        self._agent = agent
        self._tools = Catalogue("tool", tools)
        self._deps = deps
        self._ledger = ledger
        self._tools_digest = tools_digest
        self._notes = notes
        self._out = Envelope(agent, deps.scrubber)
        self._admission = Admission(agent, self._out, deps.llm.config)

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        report: ReportProgress | None = None,
        client_request_id: str | None = None,
        catalogue: Catalogue | None = None,
        via: str = "",
    ) -> AgentOutput:
        """Run one call through every rule; `report` sends progress notifications, when the client asked.

        `client_request_id` is the JSON-RPC id the client gave the call: the ledger keeps it beside ours.
        `catalogue` is the one the call's MCP method reaches (the tools unless said otherwise): `name` is looked
        up there and nowhere else. `via` says in the ledger how it was asked for (e.g. `resources/read
        docs://backup-restore`).
        """
        notes = self._notes_via(via)
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        catalogue = catalogue or self._tools
        found = catalogue.specs.get(name)
        # A name is the caller's text like any argument: bounded and scrubbed before it is echoed or recorded.
        action = found.name if found is not None else encodable(self._deps.scrubber.text(name[:MAX_NAME]))
        raw = dict(arguments or {})
        try:
            spec, args = self._admission.admit(name, raw, found, catalogue)
            reservation = self._admission.llm(raw) if LLM_ACTION in spec.actions else None
        except Refusal as refusal:
            return await self._refuse(refusal, action, request_id, raw, started, client_request_id, notes)

        recorded_args = args.model_dump(mode="json")
        intent_record = Intent(
            request_id=request_id,
            timestamp=now(),
            agent_id=self._agent.agent_id,
            agent_version=self._agent.version,
            tier=self._agent.tier,
            action=spec.name,
            arguments=recorded_args,
            tools_digest=self._tools_digest,
            notes=notes,
            client_request_id=client_request_id,
        )
        if spec.local is not None and (store := self._deps.store.local_reads) is not None:
            # A local read is over before a progress notification could say anything: none is set up.
            deps, local = self._deps, spec.local

            def one_trip() -> AgentOutput:
                """The whole call in one worker thread: intent, read, envelope, outcome. A cancel waits for it,
                and the ledger then holds how the call really ended."""
                try:
                    intent = self._ledger.record_intent(intent_record)
                except LedgerError as exc:
                    return self._no_intent(spec.name, request_id, exc)
                output = self._output(spec, request_id, raw, lambda: local(args, deps, store))
                return self._close(output, recorded_args, started, client_request_id, intent, notes)

            return await self._in_thread(one_trip)
        deps = self._call_deps(report, request_id, reservation)
        write_intent = functools.partial(self._write_intent, intent_record, reservation, raw)
        # The intent is written by the capability's first step that reads (see server.call.intent_first), in that step's
        # worker thread, before the read; a step that cannot have it written reads nothing.
        with pending_intent(write_intent) as pending:
            try:
                output = await self._capability(spec, args, deps, raw, request_id)
                intent = await self._intent(pending)
                # A cancel that came while a worker thread finished the last step is delivered here, to be
                # recorded as such, rather than at the outcome's write.
                await anyio.lowlevel.checkpoint()
            except Refusal as refusal:  # by the budget, instead of the intent: nothing was read
                return await self._refuse(refusal, action, request_id, raw, started, client_request_id, notes)
            except LedgerError as exc:
                if pending.position is None:
                    return self._no_intent(spec.name, request_id, exc)
                # The intent is in; a step failed on the ledger later (its outcome is tried, and may fail too).
                output = self._out.ledger_down(spec.name, request_id, exc, "The call could not finish.")
                intent = pending.position
            except anyio.get_cancelled_exc_class():
                # The client cancelled (or went away): the upstream request is already abandoned with this
                # task. Record how the call ended, shielded from the cancellation, so the ledger has its intent
                # and no intent is left without an outcome. The writes are bounded by the ledger's busy timeout.
                with anyio.CancelScope(shield=True):
                    stop = stop_reason()
                    info = self._out.error_info(
                        "CANCELLED",
                        f"The server was stopped ({stop}) before the call finished."
                        if stop
                        else "The client cancelled the call before it finished.",
                        raw,
                        recommended_action="Nothing to do; call again if the answer is still needed.",
                        partial_progress="The call's intent was recorded; any upstream request was abandoned.",
                    )
                    with contextlib.suppress(LedgerError, Refusal):  # the outcome then says what it can
                        await self._intent(pending)
                    cancelled = self._out.error_output(spec.name, request_id, info)
                    position = pending.position
                    await self._in_thread(
                        lambda: self._close(cancelled, recorded_args, started, client_request_id, position, notes)
                    )
                raise
        return await self._in_thread(
            lambda: self._close(output, recorded_args, started, client_request_id, intent, notes)
        )

    async def refuse_malformed(
        self, name: str, sent: dict[str, Any], problem: str, *, client_request_id: str | None, via: str
    ) -> AgentOutput:
        """Record, as a refusal like any other, a request the SDK rejected before it could reach `call`: its params
        did not fit the method's schema (`arguments` a string, `name` missing). `name` and `sent` are what the
        caller sent, bounded and scrubbed here like any name and arguments; `problem` says what did not fit."""
        info = self._out.error_info(
            "INVALID_INPUT",
            f"The request does not fit the protocol's schema: {problem}.",
            sent,
            recommended_action="Send the request as the method's schema says (for tools/call: `name` a string, "
            "`arguments` an object) and call again.",
        )
        action = encodable(self._deps.scrubber.text(name[:MAX_NAME]))
        notes = self._notes_via(via)
        started = time.perf_counter()
        return await self._refuse(Refusal(info), action, uuid.uuid4().hex, sent, started, client_request_id, notes)

    def _notes_via(self, via: str) -> str:
        if not via:
            return self._notes
        return "; ".join(note for note in (self._notes, self._deps.scrubber.text(via[:MAX_VIA])) if note)

    async def _capability(
        self, spec: ToolSpec, args: Any, deps: Deps, raw: dict[str, Any], request_id: str
    ) -> AgentOutput:
        """The capability's result in its envelope, or its failure as an error output. A ledger that cannot
        record the intent, and cancellation, are the caller's to handle."""
        try:
            result = await spec.capability(args, deps)
            # In the try: a result its envelope cannot hold (a value out of range) is a failure like any other.
            return self._out.result(spec.name, request_id, result)
        except (LedgerError, Refusal):
            raise
        except Exception as exc:
            return self._out.failure_output(spec.name, request_id, raw, exc)

    def _output(
        self, spec: ToolSpec, request_id: str, raw: dict[str, Any], produce: Callable[[], ToolResult]
    ) -> AgentOutput:
        """`_capability` for a blocking capability."""
        try:
            return self._out.result(spec.name, request_id, produce())
        except Exception as exc:
            return self._out.failure_output(spec.name, request_id, raw, exc)

    def _no_intent(self, action: str, request_id: str, exc: LedgerError) -> AgentOutput:
        logger.error("Refusing %s: the intent could not be recorded: %s", action, exc)
        return self._out.ledger_down(action, request_id, exc, "Nothing was read and no LLM was called.")

    async def _refuse(
        self,
        refusal: Refusal,
        action: str,
        request_id: str,
        raw: dict[str, Any],
        started: float,
        client_request_id: str | None,
        notes: str,
    ) -> AgentOutput:
        output = self._out.error_output(action, request_id, refusal.info)
        arguments = self._out.refused_arguments(raw)
        return await self._in_thread(
            lambda: self._close(output, arguments, started, client_request_id, None, notes, refused=True)
        )

    @staticmethod
    async def _intent(pending: PendingIntent) -> Position:
        """The intent's place in the chain: written by now, or written here when the call read nothing."""
        if pending.position is not None:
            return pending.position
        # Shielded like every ledger write: a cancel waits for it, and the CANCELLED outcome follows it.
        with anyio.CancelScope(shield=True):
            position = await anyio.to_thread.run_sync(pending.write)
        return position

    def _write_intent(self, intent: Intent, reservation: Reservation | None, raw: dict[str, Any]) -> Position:
        try:
            return self._ledger.record_intent(intent, reservation)
        except BudgetExhausted as exc:  # nothing was written: a refusal like any other
            raise Refusal(self._out.failure_info(budget_exhausted(self._agent, exc), raw)) from None

    def _call_deps(self, report: ReportProgress | None, request_id: str, reservation: Reservation | None) -> Deps:
        """What this call's capability may use: the shared deps, with the call's own progress and budget."""
        changes: dict[str, Any] = {}
        if report is not None:
            changes["progress"] = Progress(report)
        if reservation is not None:
            changes["budget"] = TokenBudget(self._ledger, self._agent, request_id)
        return dataclasses.replace(self._deps, **changes) if changes else self._deps

    @staticmethod
    async def _in_thread(work: Callable[[], AgentOutput]) -> AgentOutput:
        """Run ledger work in a worker thread, shielded: once a call has an outcome, a cancel does not keep it
        out of the ledger (the cancel is delivered when the work is done)."""
        with anyio.CancelScope(shield=True):
            done = await anyio.to_thread.run_sync(work)
        return done

    def _close(
        self,
        output: AgentOutput,
        arguments: dict[str, Any],
        started: float,
        client_request_id: str | None,
        intent: Position | None,
        notes: str,
        *,
        refused: bool = False,
    ) -> AgentOutput:
        """Record the outcome (blocking: in a worker thread) and return the output, or the error that replaces
        it when the outcome cannot be recorded.

        An outcome the ledger cannot take as it is (a value it cannot store, a bug) is replaced by an
        INTERNAL_ERROR outcome, recorded in its place: the call ends with an outcome and the client with an
        output, not a protocol error. Only a ledger that records nothing withholds the result.
        """
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        provenance = output.provenance
        assert provenance is not None  # every output the gate builds carries one
        provenance.ledger_intent_id = intent.id if intent else None
        provenance.ledger_seq = intent.seq if intent else None
        provenance.duration_ms = duration_ms
        record = functools.partial(
            self._record_outcome, arguments=arguments, client_request_id=client_request_id, intent=intent,
            notes=notes, refused=refused, duration_ms=duration_ms,
        )  # fmt: skip
        try:
            try:
                record(output)
            except Exception as exc:
                if isinstance(exc, LedgerError) and exc.reason != "value":
                    raise  # the ledger records nothing: no other outcome would land
                output = self._unrecordable(output, arguments, exc)
                record(output)
        except LedgerError as exc:
            logger.error("Withholding the result of %s: the outcome could not be recorded: %s", output.action, exc)
            consequence = (
                "The call was refused." if refused else "The result was withheld because it could not be recorded."
            )
            return self._out.ledger_down(output.action, output.request_id, exc, consequence)
        error = output.error
        # Kind and timing only: arguments and payloads are the caller's data and stay in the ledger, scrubbed.
        fields = {
            "request_id": output.request_id,
            "action": output.action,
            "decision": output.decision.value,
            "error_type": error.type if error else None,
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
        return output

    def _unrecordable(self, output: AgentOutput, arguments: dict[str, Any], exc: Exception) -> AgentOutput:
        """The INTERNAL_ERROR output recorded in place of one the ledger could not take."""
        logger.error("The outcome of %s (request %s) could not be recorded as it was", output.action,
                     output.request_id, exc_info=exc)  # fmt: skip
        info = self._out.error_info(
            "INTERNAL_ERROR",
            "The call's outcome could not be recorded as it was; the result is withheld and this error recorded "
            "instead. The server log has the details.",
            arguments,
            recommended_action="Report the request_id to the server's operator; calling again may succeed.",
            partial_progress="The call ran; its result is not returned, since it could not be recorded.",
        )
        replaced = self._out.error_output(output.action, output.request_id, info)
        if (was := output.provenance) is not None:  # where the call stands in the ledger, nothing it claimed
            replaced.provenance = Provenance(tool=was.tool, ledger_intent_id=was.ledger_intent_id,
                                             ledger_seq=was.ledger_seq, duration_ms=was.duration_ms)  # fmt: skip
        return replaced

    def _record_outcome(
        self,
        output: AgentOutput,
        *,
        arguments: dict[str, Any],
        client_request_id: str | None,
        intent: Position | None,
        notes: str,
        refused: bool,
        duration_ms: float,
    ) -> None:
        usage = output.provenance.usage if output.provenance else None
        error = output.error
        outcome = Outcome(
            request_id=output.request_id,
            timestamp=output.timestamp,
            agent_id=output.agent_id,
            agent_version=output.version,
            tier=self._agent.tier,
            action=output.action,
            decision=output.decision.value,
            confidence=output.confidence,
            success=output.decision is not Decision.ERROR,
            arguments=arguments,
            tools_digest=self._tools_digest,
            notes=notes,
            client_request_id=client_request_id,
            intent_id=intent.id if intent else None,
            refused=refused,
            error_type=error.type if error else None,
            error_message=error.message if error else None,
            duration_ms=duration_ms,
            output_digest="sha256:" + hashlib.sha256(output.sealed_json().encode()).hexdigest(),
            llm_model=output.llm_model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
        )
        self._ledger.record_outcome(outcome)
