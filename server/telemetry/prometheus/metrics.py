"""The server's Prometheus metrics: what each signal of the call path adds, and what a scrape reads afresh.

Every label value is a name the server chose, checked against the closed set it comes from (the error kinds, the
decisions, the ledger's tables and failure reasons), and anything else is written `other`: a name a caller made
up never becomes a series, so a caller cannot grow the scrape or put text of theirs in it. The agents and tools
are the server's own configuration; a tool name that is none of ours is `unknown`. Models are what the endpoint
said answered (scrubbed by the call path), so at most `MAX_MODELS` of them get series of their own.
"""

import logging
import platform
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar, get_args

from contracts import ErrorKind
from contracts.outputs import Decision
from ledger.errors import Reason
from server.telemetry.prometheus.registry import Registry
from server.telemetry.signals import CallEnded, LLMExchange, LLMRequest, Serving, Signals

__all__ = ["BUDGETS_FRESH_S", "MAX_MODELS", "PrometheusSignals"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

BUDGETS_FRESH_S = 1.0
"""Budgets are read from the ledger (under its lock) at most this often, and afresh after any call that asked the
LLM: scrapes sent in a flood cannot turn into a flood of ledger reads that the calls' writes would wait behind."""
MAX_MODELS = 16
"""Distinct model names with series of their own; the endpoint names the model, so later ones are `other`."""

OTHER = "other"
UNKNOWN_TOOL = "unknown"

_CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)

_KINDS = frozenset(kind.value for kind in ErrorKind)
_DECISIONS = frozenset(decision.value for decision in Decision)
_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})
_TABLES = frozenset({"call_intents", "agent_actions", "ledger_events", "token_reservations"})
_REASONS = frozenset(get_args(Reason))
_STORES = frozenset({"file", "vault"})
_READS = frozenset({"docs", "inventory", "list"})
_DEPENDENCIES = ("vault", "llm")
_BREAKER_STATES = ("closed", "open", "half-open")


def _one_of(value: str | None, known: frozenset[str]) -> str:
    if value is None:
        return ""
    return value if value in known else OTHER


class PrometheusSignals(Signals):
    """Counts what the call path tells; `exposition()` is a scrape's body."""

    def __init__(self, version: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        registry = self.registry = Registry()
        self._calls = registry.counter(
            "planner_mcp_calls_total",
            "Calls through the gate, by agent, tool (`unknown`: a name that is none of this server's), MCP method, "
            "decision and error kind (empty when the call ended without one).",
            ("agent", "tool", "method", "decision", "error_kind"),
        )
        self._call_seconds = registry.histogram(
            "planner_mcp_call_duration_seconds", "How long calls took, gate to recorded outcome.",
            ("agent", "tool", "method"), _CALL_BUCKETS,
        )  # fmt: skip
        self._ledger_seconds = registry.histogram(
            "planner_mcp_ledger_append_duration_seconds", "Ledger write transactions, by the table appended to.",
            ("table",), _WRITE_BUCKETS,
        )  # fmt: skip
        self._ledger_failures = registry.counter(
            "planner_mcp_ledger_append_failures_total",
            "Ledger writes that failed (the audit record could not be written), by table and reason.",
            ("table", "reason"),
        )
        self._store_seconds = registry.histogram(
            "planner_mcp_store_read_duration_seconds", "Reads of the store (file or vault), by what was read.",
            ("store", "what"), _CALL_BUCKETS,
        )  # fmt: skip
        self._store_failures = registry.counter(
            "planner_mcp_store_read_failures_total", "Reads of the store that ended in an error.", ("store", "what")
        )
        self._llm_seconds = registry.histogram(
            "planner_mcp_llm_request_duration_seconds", "Requests to the LLM endpoint, retries included.",
            ("model",), _LLM_BUCKETS,
        )  # fmt: skip
        self._llm_requests = registry.counter(
            "planner_mcp_llm_requests_total",
            "Requests to the LLM endpoint, by configured model and outcome (`replied`, else the error kind).",
            ("model", "outcome"),
        )
        self._tokens = registry.counter(
            "planner_mcp_llm_tokens_total", "Tokens the endpoint counted, by agent, model and type (input, output).",
            ("agent", "model", "type"),
        )  # fmt: skip
        self._budget = registry.gauge(
            "planner_mcp_token_budget", "Each agent's daily token budget (agents with one).", ("agent",)
        )
        self._budget_left = registry.gauge(
            "planner_mcp_token_budget_left", "What is left of each agent's token budget today (UTC).", ("agent",)
        )
        self._breakers = registry.gauge(
            "planner_mcp_breaker_state", "Circuit breakers: 1 for the state each dependency's is in, else 0.",
            ("dependency", "state"),
        )  # fmt: skip
        build = registry.gauge("planner_mcp_build_info", "The server's version, and Python's.", ("version", "python"))
        build.set(version, platform.python_version(), value=1)
        self._models: set[str] = set()
        self._models_lock = threading.Lock()
        self._serving: Serving | None = None
        self._scrape = threading.Lock()
        self._clock = clock
        self._budgets_read_at: float | None = None
        """When the budgets were last read from the runtime; None: read them at the next scrape."""

    # -- what the call path tells ------------------------------------------------------------------

    def call_ended(self, call: CallEnded) -> None:
        tool = UNKNOWN_TOOL if call.tool is None else call.tool
        method = _one_of(call.method, _METHODS)
        decision = _one_of(call.decision, _DECISIONS)
        self._calls.inc(call.agent_id, tool, method, decision, _one_of(call.error_kind, _KINDS))
        self._call_seconds.observe(call.agent_id, tool, method, value=max(call.duration_s, 0.0))
        if call.model is not None:
            model = self._model(call.model)
            for kind, tokens in (("input", call.prompt_tokens), ("output", call.completion_tokens)):
                if tokens:
                    self._tokens.inc(call.agent_id, model, kind, amount=tokens)
        if call.model is not None or (call.error_kind or "").startswith("LLM_"):
            self._budgets_read_at = None  # it spent, or kept its reservation: the next scrape reads budgets afresh

    def ledger_written(self, table: str, started_ns: int, ended_ns: int, failure: str | None) -> None:
        table = _one_of(table, _TABLES)
        self._ledger_seconds.observe(table, value=max(ended_ns - started_ns, 0) / 1e9)
        if failure is not None:
            self._ledger_failures.inc(table, _one_of(failure, _REASONS))

    def store_read(self, store: str, what: str) -> AbstractContextManager[None]:
        return self._timed_read(_one_of(store, _STORES), _one_of(what, _READS))

    @contextmanager
    def _timed_read(self, store: str, what: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            self._store_failures.inc(store, what)
            raise
        finally:
            self._store_seconds.observe(store, what, value=time.perf_counter() - started)

    def llm_request(self, request: LLMRequest) -> AbstractContextManager[LLMExchange]:
        return self._timed_request(self._model(request.model))

    @contextmanager
    def _timed_request(self, model: str) -> Iterator[LLMExchange]:
        exchange = _Exchange()
        started = time.perf_counter()
        try:
            yield exchange
        finally:
            self._llm_seconds.observe(model, value=time.perf_counter() - started)
            self._llm_requests.inc(model, exchange.outcome)

    def serving(self, runtime: Serving | None) -> None:
        self._serving = runtime
        self._budgets_read_at = None

    def _model(self, model: str) -> str:
        with self._models_lock:
            if model in self._models:
                return model
            if len(self._models) < MAX_MODELS:
                self._models.add(model)
                return model
        return OTHER

    # -- a scrape ------------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The scrape's body: budgets and breakers read from the serving runtime, then every family."""
        with self._scrape:
            runtime = self._serving
            self._read_breakers(runtime)
            now = self._clock()
            if runtime is None or self._budgets_read_at is None or now - self._budgets_read_at >= BUDGETS_FRESH_S:
                self._read_budgets(runtime)
                self._budgets_read_at = now
            return self.registry.render().encode()

    def _read_budgets(self, runtime: Serving | None) -> None:
        """What the runtime cannot answer now is left out of this scrape (and logged); so for the breakers."""
        budgets: dict[tuple[str, ...], float] = {}
        left: dict[tuple[str, ...], float] = {}
        for budget in () if runtime is None else _asked(runtime.budgets, "the token budgets"):
            budgets[(budget.agent_id,)] = budget.budget
            left[(budget.agent_id,)] = budget.left
        self._budget.replace(budgets)
        self._budget_left.replace(left)

    def _read_breakers(self, runtime: Serving | None) -> None:
        breakers: dict[tuple[str, ...], float] = {}
        for breaker in () if runtime is None else _asked(runtime.breakers, "the circuit breakers' states"):
            dependency = breaker.dependency if breaker.dependency in _DEPENDENCIES else OTHER
            for state in _BREAKER_STATES:
                breakers[(dependency, state)] = float(breaker.state == state)
        self._breakers.replace(breakers)


def _asked(read: Callable[[], Sequence[_T]], what: str) -> Sequence[_T]:
    try:
        return read()
    except Exception:
        logger.warning("Metrics: %s could not be read for this scrape", what, exc_info=True)
        return ()


class _Exchange(LLMExchange):
    def __init__(self) -> None:
        self.outcome = "unknown"
        """`replied`, or the failure's error kind; `unknown` when the request ended without saying (cancelled)."""

    def replied(self, *, model: str, input_tokens: int | None, output_tokens: int | None, finish: str | None) -> None:
        self.outcome = "replied"

    def failed(self, kind: str) -> None:
        self.outcome = _one_of(kind, _KINDS)
