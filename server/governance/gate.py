"""The gate every tools/call, prompts/get and resources/read passes: allowlist, argument validation, intent,
capability, envelope, outcome.

Fail closed: when the intent cannot be recorded nothing is read and no LLM is called; when the outcome
cannot be recorded the result is withheld (see `outcome`). Refusals, including names that are no tool, prompt
or resource of this server, are recorded like any other call.
"""

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from contracts import AgentMetadata, AgentOutput, ErrorKind
from ledger import BudgetExhausted, Intent, Ledger, LedgerError, Position, Reservation, utc_now
from server.call.callers import MAX_VIA
from server.call.failures import ToolFailure
from server.call.intent_first import PendingIntent, pending_intent
from server.call.progress import Progress, ReportProgress
from server.call.stopping import stop_reason
from server.governance.admission import MAX_NAME, Admission, Refusal
from server.governance.envelope import Envelope
from server.governance.limits import TokenBudget, budget_exhausted
from server.governance.outcome import GATE_LOGGER, CallContext, Closer, Ending
from server.governance.spec import Catalogue, Deps, ToolResult, ToolSpec
from server.governance.trips import LocalCall, Trips
from server.support.encoding import encodable
from server.support.ids import request_id
from server.telemetry import NO_SIGNALS, Signals

__all__ = ["Gate"]

logger = logging.getLogger(GATE_LOGGER)

LLM_ACTION = "llm_inference"

_METHODS = {"tool": "tools/call", "resource": "resources/read", "prompt": "prompts/get"}
"""The MCP method that reaches each kind of catalogue."""


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
        signals: Signals = NO_SIGNALS,
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
        self._closer = Closer(agent=agent, ledger=ledger, out=self._out, tools_digest=tools_digest, signals=signals)
        self._trips = Trips(self._local_trip, anyio.to_thread.run_sync)  # shielded by the trips themselves

    @property
    def agent(self) -> AgentMetadata:
        """The agent this gate judges calls as."""
        return self._agent

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
        catalogue = catalogue or self._tools
        found = catalogue.specs.get(name)
        method = _METHODS[catalogue.kind]
        context = self._open(dict(arguments or {}), client_request_id, via, method, found)
        try:
            spec, args = self._admission.admit(name, context.raw, found, catalogue)
            reservation = self._admission.llm(context.raw) if LLM_ACTION in spec.actions else None
        except Refusal as refusal:
            return await self._refuse(refusal, self._recorded_name(name, found), context)
        intent = self._intent(spec, args, context)
        if spec.local is not None and (reads := self._deps.store.local_reads) is not None:
            # A local read is over before a progress notification could say anything: none is set up.
            read = functools.partial(spec.local, args, self._deps, reads)
            return await self._trips.take(LocalCall(spec.name, read, intent, context))
        return await self._run(spec, args, intent, reservation, report, context)

    async def refuse_malformed(
        self,
        name: str,
        sent: dict[str, Any],
        problem: str,
        *,
        client_request_id: str | None,
        via: str,
        method: str = "tools/call",
    ) -> AgentOutput:
        """Record, as a refusal like any other, a request the SDK rejected before it could reach `call`: its params
        did not fit the method's schema (`arguments` a string, `name` missing). `name` and `sent` are what the
        caller sent, bounded and scrubbed here like any name and arguments; `problem` says what did not fit."""
        info = self._out.error_info(
            ErrorKind.INVALID_INPUT,
            f"The request does not fit the protocol's schema: {problem}.",
            sent,
            recommended_action="Send the request as the method's schema says (for tools/call: `name` a string, "
            "`arguments` an object) and call again.",
        )
        found = self._tools.specs.get(name) if method == "tools/call" else None
        context = self._open(sent, client_request_id, via, method, found)
        return await self._refuse(Refusal(info), self._recorded_name(name, None), context)

    # -- the steps of a call ---------------------------------------------------------------------

    def _open(
        self, raw: dict[str, Any], client_request_id: str | None, via: str, method: str, found: ToolSpec | None
    ) -> CallContext:
        """Take the call: its request id, its start, and what each of its ledger rows will say about it."""
        return CallContext(
            request_id=request_id(),
            started=time.perf_counter(),
            client_request_id=client_request_id,
            notes=self._notes_via(via),
            raw=raw,
            method=method,
            known=found.name if found is not None else None,
        )

    def _notes_via(self, via: str) -> str:
        if not via:
            return self._notes
        return "; ".join(note for note in (self._notes, self._deps.scrubber.text(via[:MAX_VIA])) if note)

    def _recorded_name(self, name: str, found: ToolSpec | None) -> str:
        """The name a refusal is recorded under. A name is the caller's text like any argument: bounded and
        scrubbed before it is echoed or recorded."""
        return found.name if found is not None else encodable(self._deps.scrubber.text(name[:MAX_NAME]))

    def _intent(self, spec: ToolSpec, args: Any, context: CallContext) -> Intent:
        """The intent to record before anything is read; its arguments are the ones the outcome records too."""
        return Intent(
            request_id=context.request_id,
            timestamp=utc_now(),
            agent_id=self._agent.agent_id,
            agent_version=self._agent.version,
            tier=self._agent.tier,
            action=spec.name,
            arguments=args.model_dump(mode="json"),
            tools_digest=self._tools_digest,
            notes=context.notes,
            client_request_id=context.client_request_id,
        )

    def _local_trip(self, calls: Sequence[LocalCall]) -> None:
        """The local reads of a trip, in one worker thread: their intents, committed together; each read and put
        in its envelope; their outcomes, committed together. A call whose intent is not recorded reads nothing."""
        ends: list[Ending] = []
        ending: list[LocalCall] = []
        for call, position in zip(calls, self._ledger.record_intents([c.intent for c in calls]), strict=True):
            if isinstance(position, LedgerError):
                call.output = self._no_intent(call.action, call.context.request_id, position)
            elif isinstance(position, BaseException):
                call.error = position
            else:
                ends.append(Ending(self._output(call.action, call.context, call.read), call.context,
                                   call.intent.arguments, position))  # fmt: skip
                ending.append(call)
        for call, done in zip(ending, self._closer.close_all(ends), strict=True):
            if isinstance(done, BaseException):
                call.error = done
            else:
                call.output = done

    async def _run(
        self,
        spec: ToolSpec,
        args: Any,
        intent: Intent,
        reservation: Reservation | None,
        report: ReportProgress | None,
        context: CallContext,
    ) -> AgentOutput:
        """The capability, awaited. The intent is written by its first step that reads (see
        server.call.intent_first), in that step's worker thread, before the read; a step that cannot have it
        written reads nothing."""
        deps = self._call_deps(report, context.request_id, reservation)
        write_intent = functools.partial(self._write_intent, intent, reservation, context.raw)
        with pending_intent(write_intent) as pending:
            try:
                output = await self._capability(spec, args, deps, context)
                position = await _written(pending)
                # A cancel that came while a worker thread finished the last step is delivered here, to be
                # recorded as such, rather than at the outcome's write.
                await anyio.lowlevel.checkpoint()
            except Refusal as refusal:  # by the budget, instead of the intent: nothing was read
                return await self._refuse(refusal, spec.name, context)
            except LedgerError as exc:
                if pending.position is None:
                    return self._no_intent(spec.name, context.request_id, exc)
                # The intent is in; a step failed on the ledger later (its outcome is tried, and may fail too).
                output = self._out.ledger_down(spec.name, context.request_id, exc, "The call could not finish.")
                position = pending.position
            except anyio.get_cancelled_exc_class():
                await self._cancelled(spec.name, pending, intent.arguments, context)
                raise
        return await _in_thread(lambda: self._closer.close(output, context, intent.arguments, position))

    async def _cancelled(
        self, action: str, pending: PendingIntent, arguments: dict[str, Any], context: CallContext
    ) -> None:
        """Record how a cancelled call ended. The client cancelled (or went away): the upstream request is already
        abandoned with this task. Shielded from the cancellation, so the ledger has the call's intent and no
        intent is left without an outcome; the writes are bounded by the ledger's busy timeout."""
        with anyio.CancelScope(shield=True):
            stop = stop_reason()
            info = self._out.error_info(
                ErrorKind.CANCELLED,
                f"The server was stopped ({stop}) before the call finished."
                if stop
                else "The client cancelled the call before it finished.",
                context.raw,
                recommended_action="Nothing to do; call again if the answer is still needed.",
                partial_progress="The call's intent was recorded; any upstream request was abandoned.",
            )
            with contextlib.suppress(LedgerError, Refusal):  # the outcome then says what it can
                await _written(pending)
            cancelled = self._out.error_output(action, context.request_id, info)
            position = pending.position
            await _in_thread(lambda: self._closer.close(cancelled, context, arguments, position))

    async def _capability(self, spec: ToolSpec, args: Any, deps: Deps, context: CallContext) -> AgentOutput:
        """The capability's result in its envelope, or its failure as an error output. A ledger that cannot
        record the intent, and cancellation, are the caller's to handle."""
        try:
            result = await spec.capability(args, deps)
            # In the try: a result its envelope cannot hold (a value out of range) is a failure like any other.
            return self._out.result(spec.name, context.request_id, result)
        except (LedgerError, Refusal):
            raise
        except Exception as exc:
            return self._failed(spec.name, context, exc)

    def _output(self, action: str, context: CallContext, read: Callable[[], ToolResult]) -> AgentOutput:
        """`_capability` for a blocking capability."""
        try:
            return self._out.result(action, context.request_id, read())
        except Exception as exc:
            return self._failed(action, context, exc)

    def _failed(self, action: str, context: CallContext, exc: Exception) -> AgentOutput:
        """A capability's failure as the output; a bug's traceback goes to the log, never to the caller."""
        if not isinstance(exc, ToolFailure):
            logger.error("Tool %s failed unexpectedly (request %s)", action, context.request_id, exc_info=exc)
        return self._out.failure_output(action, context.request_id, context.raw, exc)

    def _no_intent(self, action: str, request_id: str, exc: LedgerError) -> AgentOutput:
        logger.error("Refusing %s: the intent could not be recorded: %s", action, exc)
        return self._out.ledger_down(action, request_id, exc, "Nothing was read and no LLM was called.")

    async def _refuse(self, refusal: Refusal, action: str, context: CallContext) -> AgentOutput:
        output = self._out.error_output(action, context.request_id, refusal.info)
        arguments = self._out.refused_arguments(context.raw)
        return await _in_thread(lambda: self._closer.close(output, context, arguments, None, refused=True))

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


async def _written(pending: PendingIntent) -> Position:
    """The intent's place in the chain: written by now, or written here when the call read nothing."""
    if pending.position is not None:
        return pending.position
    # Shielded like every ledger write: a cancel waits for it, and the CANCELLED outcome follows it.
    with anyio.CancelScope(shield=True):
        position = await anyio.to_thread.run_sync(pending.write)
    return position


async def _in_thread(work: Callable[[], AgentOutput]) -> AgentOutput:
    """Run ledger work in a worker thread, shielded: once a call has an outcome, a cancel does not keep it out of
    the ledger (the cancel is delivered when the work is done)."""
    with anyio.CancelScope(shield=True):
        done = await anyio.to_thread.run_sync(work)
    return done
