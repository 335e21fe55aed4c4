"""What each signal adds to a scrape, read back through the Prometheus client's parser: calls by agent, tool,
method, decision and error kind; latencies; ledger writes and their failures; store reads; LLM requests and
tokens; budgets and breakers read from the serving runtime at scrape time. Labels hold only names the server
chose: anything else is `other` or `unknown`."""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.telemetry import BreakerState, BudgetLeft, CallEnded, LLMRequest
from server.telemetry.prometheus import PrometheusSignals
from server.telemetry.prometheus.metrics import BUDGETS_FRESH_S, MAX_MODELS
from server.telemetry.prometheus.registry import Registry
from tests.clock import ManualClock
from tests.telemetry.prometheus.scrape import Scrape

README = Path(__file__).parents[3] / "README.md"


def _call(**changes: object) -> CallEnded:
    fields: dict[str, object] = {
        "agent_id": "planner", "tool": "read_docs", "method": "tools/call", "decision": "EXECUTE",
        "error_kind": None, "refused": False, "duration_s": 0.02, "model": None, "prompt_tokens": None,
        "completion_tokens": None,
    }  # fmt: skip
    return CallEnded(**{**fields, **changes})  # type: ignore[arg-type]


def _scrape(signals: PrometheusSignals) -> Scrape:
    return Scrape(signals.exposition().decode())


@dataclass
class _Runtime:
    """What a serving runtime answers a scrape (the `Serving` protocol), as the test sets it."""

    budget_rows: list[BudgetLeft] = field(default_factory=list)
    breaker_rows: list[BreakerState] = field(default_factory=list)
    fails: bool = False
    budget_reads: int = 0

    def budgets(self) -> Sequence[BudgetLeft]:
        self.budget_reads += 1
        if self.fails:
            raise RuntimeError("the ledger is locked")
        return self.budget_rows

    def breakers(self) -> Sequence[BreakerState]:
        if self.fails:
            raise RuntimeError("a breaker could not be read")
        return self.breaker_rows


def test_calls_are_counted_by_agent_tool_method_decision_and_error_kind() -> None:
    signals = PrometheusSignals("1.2.3")
    for _ in range(3):
        signals.call_ended(_call())
    signals.call_ended(_call(decision="ERROR", error_kind="NOT_FOUND"))
    signals.call_ended(_call(agent_id="auditor", tool="read_inventory", method="resources/read"))
    scrape = _scrape(signals)
    calls = "planner_mcp_calls_total"
    assert scrape.value(calls, agent="planner", tool="read_docs", decision="EXECUTE", error_kind="") == 3
    assert scrape.value(calls, agent="planner", decision="ERROR", error_kind="NOT_FOUND") == 1
    assert scrape.value(calls, agent="auditor", tool="read_inventory", method="resources/read") == 1
    assert scrape.value(calls) == 5
    assert scrape.value("planner_mcp_call_duration_seconds_count", agent="planner", tool="read_docs") == 4
    assert scrape.value("planner_mcp_call_duration_seconds_sum") == pytest.approx(0.1)
    assert scrape.families["planner_mcp_calls"].type == "counter"
    assert scrape.families["planner_mcp_call_duration_seconds"].type == "histogram"


def test_names_the_server_did_not_choose_never_become_labels() -> None:
    signals = PrometheusSignals("1.2.3")
    signals.call_ended(_call(tool=None, decision="ERROR", error_kind="FORBIDDEN_ACTION", refused=True))
    signals.call_ended(_call(method="tools/made-up", decision="MAYBE", error_kind="SOMETHING_ELSE"))
    signals.ledger_written("a_table_of_mine", 0, 1_000, "a reason\nof mine")
    with pytest.raises(ValueError), signals.store_read("s3", "secrets"):
        raise ValueError("the read failed")
    scrape = _scrape(signals)
    assert scrape.value("planner_mcp_calls_total", tool="unknown", error_kind="FORBIDDEN_ACTION") == 1
    assert scrape.value("planner_mcp_calls_total", method="other", decision="other", error_kind="other") == 1
    assert scrape.value("planner_mcp_ledger_append_failures_total", table="other", reason="other") == 1
    assert scrape.value("planner_mcp_store_read_failures_total", store="other", what="other") == 1
    for made_up in ("tools/made-up", "MAYBE", "SOMETHING_ELSE", "a_table_of_mine", "of mine", "s3", "secrets"):
        assert made_up not in scrape.text


def test_tokens_are_counted_per_agent_and_model_and_models_past_the_cap_are_other() -> None:
    signals = PrometheusSignals("1.2.3")
    signals.call_ended(_call(tool="generate_plan", model="gpt-4o-mini", prompt_tokens=11, completion_tokens=7))
    signals.call_ended(_call(tool="analyze", model="gpt-4o-mini", prompt_tokens=5, completion_tokens=0))
    for n in range(MAX_MODELS + 3):
        signals.call_ended(_call(tool="analyze", model=f"model-{n}", prompt_tokens=1, completion_tokens=1))
    scrape = _scrape(signals)
    tokens = "planner_mcp_llm_tokens_total"
    assert scrape.value(tokens, agent="planner", model="gpt-4o-mini", type="input") == 16
    assert scrape.value(tokens, agent="planner", model="gpt-4o-mini", type="output") == 7
    models = {labels["model"] for labels, _ in scrape.samples(tokens)}
    assert len(models) == MAX_MODELS + 1 and "other" in models
    assert scrape.value(tokens, model="other", type="input") == 4  # the models past the cap, counted together


def test_ledger_writes_are_timed_by_table_and_their_failures_counted_by_reason() -> None:
    signals = PrometheusSignals("1.2.3")
    signals.ledger_written("call_intents", 1_000_000_000, 1_003_000_000, None)
    signals.ledger_written("agent_actions", 1_000_000_000, 1_002_000_000, None)
    signals.ledger_written("agent_actions", 1_000_000_000, 1_000_500_000, "full")
    scrape = _scrape(signals)
    seconds = "planner_mcp_ledger_append_duration_seconds"
    assert scrape.value(f"{seconds}_count", table="agent_actions") == 2
    assert scrape.value(f"{seconds}_sum", table="call_intents") == pytest.approx(0.003)
    assert scrape.value(f"{seconds}_bucket", table="call_intents", le="0.0025") == 0
    assert scrape.value(f"{seconds}_bucket", table="call_intents", le="0.005") == 1
    assert scrape.value("planner_mcp_ledger_append_failures_total", table="agent_actions", reason="full") == 1
    assert scrape.value("planner_mcp_ledger_append_failures_total", table="call_intents") == 0


def test_llm_requests_are_timed_and_counted_by_their_outcome() -> None:
    signals = PrometheusSignals("1.2.3")
    request = LLMRequest(model="test-model", host="127.0.0.1", structured=True)
    with signals.llm_request(request) as exchange:
        exchange.replied(model="test-model-2026", input_tokens=3, output_tokens=4, finish="stop")
    with signals.llm_request(request) as exchange:
        exchange.failed("LLM_UNREACHABLE")
    with pytest.raises(KeyboardInterrupt), signals.llm_request(request):
        raise KeyboardInterrupt  # ended without a word: cancelled, say
    scrape = _scrape(signals)
    requests = "planner_mcp_llm_requests_total"
    assert scrape.value(requests, model="test-model", outcome="replied") == 1
    assert scrape.value(requests, model="test-model", outcome="LLM_UNREACHABLE") == 1
    assert scrape.value(requests, model="test-model", outcome="unknown") == 1
    assert scrape.value("planner_mcp_llm_request_duration_seconds_count", model="test-model") == 3
    assert "test-model-2026" not in scrape.text  # the request's model (configured), not the reply's


def test_store_reads_are_timed_and_the_failed_ones_counted() -> None:
    signals = PrometheusSignals("1.2.3")
    with signals.store_read("vault", "docs"):
        pass
    with pytest.raises(LookupError), signals.store_read("vault", "docs"):
        raise LookupError
    scrape = _scrape(signals)
    assert scrape.value("planner_mcp_store_read_duration_seconds_count", store="vault", what="docs") == 2
    assert scrape.value("planner_mcp_store_read_failures_total", store="vault", what="docs") == 1


def test_budgets_and_breakers_are_read_from_the_serving_runtime_at_scrape_time() -> None:
    clock = ManualClock()
    signals = PrometheusSignals("1.2.3", clock=clock)
    assert "planner_mcp_token_budget_left{" not in _scrape(signals).text  # nothing serves yet
    breakers = [BreakerState("vault", "closed"), BreakerState("llm", "open")]
    runtime = _Runtime([BudgetLeft("planner", 1000, 1000)], breakers)
    signals.serving(runtime)
    first = _scrape(signals)
    runtime.budget_rows = [BudgetLeft("planner", 1000, 640)]
    runtime.breaker_rows = [BreakerState("vault", "half-open"), BreakerState("llm", "closed")]
    clock.now += BUDGETS_FRESH_S
    second = _scrape(signals)
    assert first.value("planner_mcp_token_budget", agent="planner") == 1000
    assert (first.value("planner_mcp_token_budget_left"), second.value("planner_mcp_token_budget_left")) == (1000, 640)
    states = "planner_mcp_breaker_state"
    assert first.value(states, dependency="llm", state="open") == 1
    assert first.value(states, dependency="llm", state="closed") == 0
    assert second.value(states, dependency="vault", state="half-open") == 1
    assert second.value(states, dependency="llm", state="closed") == 1
    signals.serving(None)
    assert "planner_mcp_breaker_state{" not in _scrape(signals).text


def test_a_flood_of_scrapes_reads_the_budgets_once_a_second_and_afresh_after_an_llm_call() -> None:
    clock = ManualClock()
    signals = PrometheusSignals("1.2.3", clock=clock)
    runtime = _Runtime([BudgetLeft("planner", 1000, 1000)], [BreakerState("llm", "closed")])
    signals.serving(runtime)
    for _ in range(50):
        _scrape(signals)
    runtime.budget_rows = [BudgetLeft("planner", 1000, 982)]
    runtime.breaker_rows = [BreakerState("llm", "open")]
    flooded = _scrape(signals)
    assert runtime.budget_reads == 1 and flooded.value("planner_mcp_token_budget_left") == 1000
    assert flooded.value("planner_mcp_breaker_state", state="open") == 1  # in memory: read at every scrape
    signals.call_ended(_call())  # a read: the budgets stand
    assert _scrape(signals).value("planner_mcp_token_budget_left") == 1000
    signals.call_ended(_call(tool="analyze", model="test-model", prompt_tokens=11, completion_tokens=7))
    assert _scrape(signals).value("planner_mcp_token_budget_left") == 982
    runtime.budget_rows = [BudgetLeft("planner", 1000, 900)]
    signals.call_ended(_call(tool="analyze", decision="ERROR", error_kind="LLM_TIMEOUT"))  # its reservation kept
    assert _scrape(signals).value("planner_mcp_token_budget_left") == 900
    runtime.budget_rows = [BudgetLeft("planner", 1000, 800)]  # another process sharing the ledger spent
    clock.now += BUDGETS_FRESH_S
    assert _scrape(signals).value("planner_mcp_token_budget_left") == 800
    assert runtime.budget_reads == 4


def test_what_the_runtime_cannot_answer_is_left_out_of_that_scrape_and_the_rest_is_served() -> None:
    clock = ManualClock()
    signals = PrometheusSignals("1.2.3", clock=clock)
    signals.call_ended(_call())
    runtime = _Runtime([BudgetLeft("planner", 1000, 10)], [BreakerState("llm", "closed")], fails=True)
    signals.serving(runtime)
    failing = _scrape(signals)
    runtime.fails = False
    clock.now += BUDGETS_FRESH_S
    answered = _scrape(signals)
    assert failing.samples("planner_mcp_token_budget_left") == failing.samples("planner_mcp_breaker_state") == []
    assert failing.value("planner_mcp_calls_total") == 1
    assert answered.value("planner_mcp_token_budget_left", agent="planner") == 10
    assert answered.value("planner_mcp_breaker_state", dependency="llm", state="closed") == 1


def test_build_info_names_the_version() -> None:
    scrape = _scrape(PrometheusSignals("1.2.3"))
    [(labels, value)] = scrape.samples("planner_mcp_build_info")
    assert labels["version"] == "1.2.3" and value == 1


def test_the_text_format_escapes_label_values_and_help_as_the_prometheus_parser_reads_them() -> None:
    registry = Registry()
    counter = registry.counter("odd_total", 'Help with a \\ backslash\nand "a second line".', ("name",))
    hostile = 'a "quoted" \\ back\nslash } , le="1"'
    counter.inc(hostile, amount=2.5)
    histogram = registry.histogram("odd_seconds", "Timing.", ("name",), (0.1, 1))
    for value in (0.05, 0.1, 0.5, 3):
        histogram.observe(hostile, value=value)
    registry.gauge("odd_nan", "Not a number.").set(value=math.nan)
    families = {family.name: family for family in text_string_to_metric_families(registry.render())}
    [sample] = families["odd"].samples
    assert sample.labels == {"name": hostile} and sample.value == 2.5
    assert families["odd"].documentation == 'Help with a \\ backslash\nand "a second line".'
    buckets = {s.labels["le"]: s.value for s in families["odd_seconds"].samples if s.name == "odd_seconds_bucket"}
    assert buckets == {"0.1": 2, "1.0": 3, "+Inf": 4}  # cumulative, a value on a bound counted in it
    assert math.isnan(families["odd_nan"].samples[0].value)


def test_a_counter_refuses_to_go_down_and_a_family_its_wrong_labels() -> None:
    counter = Registry().counter("x_total", "X.", ("a",))
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc("v", amount=-1)
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc("v", "w")


def test_the_readme_lists_every_metric_a_scrape_holds_with_its_type_and_labels() -> None:
    section = README.read_text().split("\n### Metrics (Prometheus)\n", 1)[1].split("\n## ", 1)[0]
    listed: dict[str, tuple[str, set[str]]] = {}
    for line in section.splitlines():
        if line.startswith("| `planner_mcp_"):
            names, kinds, labels = (cell.strip() for cell in line.split("|")[1:4])
            label_names = _label_names(labels)
            for name, kind in zip(re.findall(r"`(\w+)`", names), kinds.split(", ") * 2, strict=False):
                listed[name] = (kind, label_names)
    signals = PrometheusSignals("1.2.3")
    families = {family.name: family for family in signals.registry.families()}
    assert listed == {name: (family.kind, set(family.labels)) for name, family in families.items()}


def _label_names(cell: str) -> set[str]:
    """The label names a README cell lists: each backquoted word not inside the parentheses that give its values."""
    return set(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cell)))
