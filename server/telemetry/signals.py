"""What the server tells operators' monitoring as calls run, and the listener that hears none of it.

The call path holds one `Signals` and calls it without asking whether anyone listens: with telemetry off (the
default) that is this base class, whose every method does nothing, so a call pays a few empty method calls.
Prometheus and OpenTelemetry each implement it (`server.telemetry.prometheus`, `server.telemetry.otel`);
`Fanout` tells several.

What a signal carries is chosen for monitoring: names the server chose (a tool, an agent, a model the policy
allows, an error kind, a ledger table) and figures. Never an argument's value, a document, a reply or a token:
those stay in the ledger, scrubbed, where an auditor may read them.

The records are named tuples, not dataclasses: every server imports this module at start-up, and a named tuple
is made in a seventh of the time.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import NamedTuple, Protocol

__all__ = [
    "NO_SIGNALS",
    "BreakerState",
    "BudgetLeft",
    "CallEnded",
    "Fanout",
    "LLMExchange",
    "LLMRequest",
    "Serving",
    "Signals",
    "TelemetryUnavailable",
]


class TelemetryUnavailable(Exception):
    """Monitoring that was asked for cannot start (its packages are not installed, its port is taken). The message
    says what to do; the server serves without it, since monitoring is not the audit record."""


class CallEnded(NamedTuple):
    """One call through the gate, as it ended (its outcome recorded, or withheld)."""

    agent_id: str
    tool: str | None
    """The tool, prompt or resource template's registered name; None when the caller named none of this server's
    (the name is then the caller's text, and stays out of every label)."""
    method: str
    """The MCP method that reached the gate: `tools/call`, `resources/read` or `prompts/get`."""
    decision: str
    error_kind: str | None
    """The `ErrorKind` value, when the call ended in an error (a refusal included)."""
    refused: bool
    duration_s: float
    model: str | None
    """The model that answered, for a call that asked an LLM."""
    prompt_tokens: int | None
    completion_tokens: int | None


class LLMRequest(NamedTuple):
    """One request to the LLM endpoint, as it leaves (retries included: it ends with the last attempt)."""

    model: str
    host: str
    """The endpoint's host (`server.address`), never its URL's credentials or path."""
    structured: bool


class LLMExchange:
    """What an LLM request's observer learns as it ends: the reply's figures, or the failure's kind."""

    def replied(self, *, model: str, input_tokens: int | None, output_tokens: int | None, finish: str | None) -> None:
        return None

    def failed(self, kind: str) -> None:
        return None


class BudgetLeft(NamedTuple):
    agent_id: str
    budget: int
    """The agent's daily token budget."""
    left: int
    """What is left of it today (UTC), as the ledger's chain has it."""


class BreakerState(NamedTuple):
    dependency: str
    """`vault` or `llm`."""
    state: str
    """`closed`, `open` or `half-open`."""


class Serving(Protocol):
    """What a served runtime can say when monitoring asks (a scrape): read then, not kept up to date per call."""

    def budgets(self) -> Sequence[BudgetLeft]: ...

    def breakers(self) -> Sequence[BreakerState]: ...


_QUIET: AbstractContextManager[None] = nullcontext()
_NO_EXCHANGE = LLMExchange()


class Signals:
    """The listener that hears nothing: telemetry off. Subclasses override what they observe."""

    def call_ended(self, call: CallEnded) -> None:
        return None

    def ledger_written(self, table: str, started_ns: int, ended_ns: int, failure: str | None) -> None:
        """A ledger transaction that appended to `table`: wall-clock `time.time_ns()` bounds, and the
        `LedgerError.reason` when it failed. Called in the worker thread that wrote (the call's context)."""
        return None

    def store_read(self, store: str, what: str) -> AbstractContextManager[None]:
        """Around one read of the store (`file` or `vault`; `what`: `docs`, `inventory`, `list`). The read's
        exception, if any, passes through."""
        return _QUIET

    def llm_request(self, request: LLMRequest) -> AbstractContextManager[LLMExchange]:
        """Around one request to the LLM endpoint, its retries included."""
        return nullcontext(_NO_EXCHANGE)

    def serving(self, runtime: Serving | None) -> None:
        """A runtime began serving (None: it stopped): what a scrape reads budgets and breakers from."""
        return None


NO_SIGNALS = Signals()


class Fanout(Signals):
    """Several listeners told the same, in order (Prometheus and OpenTelemetry both on)."""

    def __init__(self, listeners: Iterable[Signals]) -> None:
        self._listeners = tuple(listeners)

    def call_ended(self, call: CallEnded) -> None:
        for listener in self._listeners:
            listener.call_ended(call)

    def ledger_written(self, table: str, started_ns: int, ended_ns: int, failure: str | None) -> None:
        for listener in self._listeners:
            listener.ledger_written(table, started_ns, ended_ns, failure)

    def store_read(self, store: str, what: str) -> AbstractContextManager[None]:
        return _all([listener.store_read(store, what) for listener in self._listeners])

    def llm_request(self, request: LLMRequest) -> AbstractContextManager[LLMExchange]:
        return _exchanges([listener.llm_request(request) for listener in self._listeners])

    def serving(self, runtime: Serving | None) -> None:
        for listener in self._listeners:
            listener.serving(runtime)


class _Exchanges(LLMExchange):
    def __init__(self, exchanges: Sequence[LLMExchange]) -> None:
        self._exchanges = exchanges

    def replied(self, *, model: str, input_tokens: int | None, output_tokens: int | None, finish: str | None) -> None:
        for exchange in self._exchanges:
            exchange.replied(model=model, input_tokens=input_tokens, output_tokens=output_tokens, finish=finish)

    def failed(self, kind: str) -> None:
        for exchange in self._exchanges:
            exchange.failed(kind)


@contextmanager
def _exchanges(managers: Sequence[AbstractContextManager[LLMExchange]]) -> Iterator[LLMExchange]:
    with ExitStack() as stack:
        yield _Exchanges([stack.enter_context(manager) for manager in managers])


@contextmanager
def _all(managers: Sequence[AbstractContextManager[None]]) -> Iterator[None]:
    with ExitStack() as stack:
        for manager in managers:
            stack.enter_context(manager)
        yield
