"""The human half of the results: one table of figures and one of targets, as plain text."""

from collections.abc import Mapping, Sequence
from typing import Any

from bench.targets import Verdict

__all__ = ["render"]


_READ_SERVERS = ("planner", "strict", "sdk", "bare", "durable", "intent")


def _ms(summary: Mapping[str, Any]) -> str:
    return f"{summary['p50']:8.3f} {summary['p95']:8.3f}"


def _cpu(figures: Mapping[str, Any]) -> str:
    """The fast client's figures beyond latency: each process's CPU per call."""
    return f"  CPU/call {figures['server_cpu_ms']:.3f} server, {figures['client_cpu_ms']:.3f} client"


def _fast_lines(results: Mapping[str, Any]) -> list[str]:
    """The sections the fast client drove: the read tools one call at a time, and throughput."""
    lines = []
    for tool, figures in results.get("read_tools", {}).items():
        label = f"{tool} round trip"
        lines += [f"{label:<44} {name:<10} {_ms(figures[name])}{_cpu(figures[name])}" for name in _READ_SERVERS]
    section = results.get("throughput", {})
    for transport in ("stdio", "http"):
        for concurrency, figures in section.get(transport, {}).items():
            label = f"{section['tool']} {transport}, {concurrency} in flight"
            for name in ("planner", "strict", "sdk", "bare"):
                server = figures[name]
                lines.append(f"{label:<44} {name:<10} {_ms(server)}  {server['calls_per_s']:6.0f}/s{_cpu(server)}")
    return lines


def _ratio_lines(results: Mapping[str, Any]) -> list[str]:
    """Not targets: planner-mcp's CPU against the strict floor's, the fast client's own cost, and how the cost
    above the durable floor splits between the intent row and the rest."""
    lines = []
    for tool, figures in results.get("read_tools", {}).items():
        for label, key in (
            ("server CPU/call, planner vs strict floor", "ratio_server_cpu_to_strict"),
            ("p50, planner vs sdk floor", "ratio_p50_to_sdk"),
            ("fast client's CPU/call vs sdk floor's p50", "client_cpu_share_of_sdk_p50"),
            ("p50, intent floor vs durable", "ratio_p50_intent_floor_to_durable"),
            ("p50, planner vs intent floor", "ratio_p50_to_intent_floor"),
        ):
            lines.append(f"{f'{tool} {label}':<55} {figures[key]:8.3f}x")
    section = results.get("throughput", {})
    for transport in ("stdio", "http"):
        for concurrency, figures in section.get(transport, {}).items():
            label = f"{transport}, {concurrency} in flight, planner vs strict:"
            lines.append(
                f"{label:<44} calls/s {figures['ratio_to_strict']:.3f}x, server CPU/call "
                f"{figures['ratio_server_cpu_to_strict']:.3f}x"
            )
    return lines


def _latency_rows(results: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(what, which server, its summary) for every latency the results hold."""
    rows: list[tuple[str, str, Mapping[str, Any]]] = []
    if cold := results.get("cold_start"):
        rows += [("cold start (spawn to tools/list)", name, cold[name]) for name in ("planner", "bare")]
    if llm := results.get("llm"):
        for tool in ("analyze", "generate_plan"):
            label = f"{tool} (peer delay {llm['delay_ms']:g} ms)"
            rows += [(label, name, llm[tool][name]) for name in ("planner", "bare")]
    growth = results.get("growth", {})
    for count, summary in growth.get("ledger", {}).get("rows", {}).items():
        rows.append((f"read_docs, ledger of {int(count):,} rows", "planner", summary))
    for size, figures in growth.get("documents", {}).get("bytes", {}).items():
        label = f"read_docs, document of {int(size):,} bytes"
        rows += [(label, name, figures[name]) for name in ("planner", "bare")]
    return rows


def _postgres_lines(section: Mapping[str, Any]) -> list[str]:
    """The PostgreSQL section: its appends, and its reads beside SQLite's (or why it did not run)."""
    if "skipped" in section:
        return [f"{'ledger on PostgreSQL':<44} skipped: {section['skipped']}"]
    lines = []
    for figures in section["appends"].values():
        label = f"PostgreSQL appends/s, {figures['processes']} writer(s)"
        lines.append(
            f"{label:<44} {'':<10} {figures['per_second']:8.0f}   lost {figures['lost']}, verify {figures['verify']}"
        )
    reads = section["read_docs"]
    lines += [
        f"{'read_docs round trip (ms), ledger on':<44} {name:<10} {_ms(reads[name])}" for name in ("postgres", "sqlite")
    ]
    lines.append(f"{'read_docs p50, PostgreSQL vs SQLite':<55} {reads['ratio_p50_to_sqlite']:8.3f}x")
    return lines


def _telemetry_lines(section: Mapping[str, Any]) -> list[str]:
    """Telemetry's cost: each server's figures, and its p50 against the same server with telemetry off."""
    lines = []
    for what, figures in (*section["read_tools"].items(), ("cold start", section["cold_start"])):
        servers = [name for name in figures if not name.startswith("ratio_")]
        lines += [f"{f'{what} (ms), telemetry':<44} {name:<10} {_ms(figures[name])}" for name in servers]
        lines += [
            f"{f'{what} p50, telemetry {name} vs off':<55} {figures[f'ratio_p50_{name}_to_off']:8.3f}x"
            for name in servers
            if name != "off"
        ]
    if section["otel"] != "measured":
        lines.append(f"{'OpenTelemetry':<44} {section['otel']}")
    return lines


def render(results: Mapping[str, Any], verdicts: Sequence[Verdict]) -> str:
    lines = [f"{'measurement (ms)':<44} {'server':<10} {'p50':>8} {'p95':>8}", "-" * 73]
    lines += [f"{what:<44} {name:<10} {_ms(summary)}" for what, name, summary in _latency_rows(results)]
    lines += _fast_lines(results)
    if memory := results.get("memory"):
        for name, kib in memory["peak_rss_kib"].items():
            lines.append(f"{'peak RSS (MiB)':<44} {name:<10} {kib / 1024:8.1f}")
    if ledger := results.get("ledger"):
        one, shared = ledger["one_process"], ledger["shared"]
        lines.append(f"{'ledger appends/s, one process':<44} {'':<10} {one['per_second']:8.0f}")
        label = f"ledger appends/s, {shared['processes']} processes"
        lines.append(
            f"{label:<44} {'':<10} {shared['per_second']:8.0f}   lost {shared['lost']}, verify {shared['verify']}"
        )
    lines += _ratio_lines(results)
    if postgres := results.get("postgres"):
        lines += _postgres_lines(postgres)
    if report := results.get("report"):
        label = f"ledger report of {report['rows']:,} rows (s)"
        lines.append(f"{label:<44} {'':<10} {report['seconds']:8.2f}   verify alone {report['verify_seconds']:.2f}")
    if telemetry := results.get("telemetry"):
        lines += _telemetry_lines(telemetry)
    lines += ["", f"{'target':<48} {'value':>10} {'limit':>10}  result", "-" * 78]
    for verdict in verdicts:
        target = verdict.target
        bound = ("<= " if target.at_most else ">= ") + f"{target.limit:g}{target.unit}"
        value = "-" if verdict.value is None else f"{verdict.value:g}{target.unit}"
        result = "not run" if verdict.value is None else "met" if verdict.ok else "MISSED"
        lines.append(f"{target.name:<48} {value:>10} {bound:>10}  {result}")
    return "\n".join(lines)
