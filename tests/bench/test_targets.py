"""The targets are judged on the figures the harness wrote, and a section not run is not a target met."""

from typing import Any

from bench.report import render
from bench.targets import TARGETS, judge


def _results(**overrides: Any) -> dict[str, Any]:
    results: dict[str, Any] = {
        "cold_start": {"ratio_p50_to_bare": 1.05},
        "read_tools": {
            "read_docs": {"ratio_p50_to_strict": 1.2},
            "read_inventory": {"ratio_p50_to_strict": 1.25},
        },
        "throughput": {"stdio": {"8": {"ratio_to_strict": 0.85}}, "http": {"8": {"ratio_to_strict": 0.8}}},
        "memory": {"ratio_to_bare": 1.1},
        "ledger": {"one_process": {"per_second": 3100.0}, "shared": {"per_second": 1600.0, "lost": 0}},
        "llm": {"analyze": {"overhead_vs_bare_p50_ms": 1.5}, "generate_plan": {"overhead_vs_bare_p50_ms": 2.9}},
        "growth": {"ledger": {"ratio_p50_largest_to_smallest": 1.01}, "documents": {"exponent": 0.7}},
        "postgres": {
            "appends": {"writers": {"per_second": 1600.0, "lost": 0}},
            "read_docs": {"ratio_p50_to_sqlite": 1.2},
        },
        "report": {"seconds": 21.0},
    }
    results.update(overrides)
    return results


def test_figures_within_every_limit_meet_every_target() -> None:
    verdicts = judge(_results())
    assert len(verdicts) == len(TARGETS)
    assert all(v.ok and v.value is not None for v in verdicts)


def test_a_figure_past_its_limit_misses_in_either_direction() -> None:
    slow = _results(memory={"ratio_to_bare": 1.26})
    few = _results(ledger={"one_process": {"per_second": 2999.0}, "shared": {"per_second": 1600.0, "lost": 1}})
    missed = {v.target.name for v in judge(slow) if not v.ok}
    assert missed == {"peak RSS vs bare"}
    missed = {v.target.name for v in judge(few) if not v.ok}
    assert missed == {"ledger appends/s, one process", "ledger rows lost, 4 processes"}


def test_reads_and_throughput_are_judged_against_the_strict_floor_not_the_old_ones() -> None:
    """Issue 27: the durable floor's ratio is reported and judged no more; throughput at 8 in flight is."""
    results = _results(read_tools={"read_docs": {"ratio_p50_to_strict": 1.3, "ratio_p50_to_durable": 1.0}})
    results["throughput"]["http"]["8"]["ratio_to_strict"] = 0.79
    verdicts = {v.target.name: v for v in judge(results)}
    assert not verdicts["read_docs p50 vs strict floor, stdio"].ok
    assert verdicts["read_inventory p50 vs strict floor, stdio"].value is None
    assert not verdicts["calls/s at 8 in flight vs strict, HTTP"].ok
    assert verdicts["calls/s at 8 in flight vs strict, stdio"].ok
    assert not any("durable" in name for name in verdicts)


def test_a_limit_itself_is_met() -> None:
    verdicts = {v.target.name: v for v in judge(_results(cold_start={"ratio_p50_to_bare": 1.10}))}
    assert verdicts["cold start, p50 vs bare"].ok


def test_a_section_that_did_not_run_has_no_value_and_is_not_met() -> None:
    results = _results()
    del results["llm"]
    verdicts = {v.target.name: v for v in judge(results)}
    assert verdicts["analyze overhead p50 vs bare"].value is None and not verdicts["analyze overhead p50 vs bare"].ok
    assert verdicts["cold start, p50 vs bare"].ok


def test_the_table_names_what_was_missed_and_what_was_not_run() -> None:
    results = {
        "memory": {"ratio_to_bare": 2.0, "peak_rss_kib": {"planner": 2048, "bare": 1024}},
        "ledger": {
            "one_process": {"per_second": 3500.0},
            "shared": {"processes": 4, "per_second": 1700.0, "lost": 0, "verify": "ok"},
        },
    }
    table = render(results, judge(results))
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    assert lines["peak RSS vs bare"].endswith("MISSED")
    assert lines["analyze overhead p50 vs bare"].endswith("not run")
    assert lines["ledger appends/s, one process"].endswith("met")
    assert "lost 0, verify ok" in table
