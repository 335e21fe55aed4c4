"""`planner-mcp ledger report --html FILE`, run as an auditor runs it, on a ledger real servers wrote: the page's
figures are the ledger's, its text from the ledger is never markup, it loads nothing, a broken chain is said loudly,
and the file is replaced whole."""

import re
import shutil
import sqlite3
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.chain import TABLES
from server.report.series import MOST_BARS
from tests.conftest import rows
from tests.processes import on_a_terminal, run_cli
from tests.report.ledgers import DISGUISED_TOOL, MARKUP_TOOLS
from tests.report.page import Page, parse
from tests.server.postgres.calls import record

pytestmark = pytest.mark.subprocess

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
ALLOWED = {
    "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "p", "code", "span", "div", "strong",
    "br", "table", "tr", "th", "td", "svg", "g", "rect", "text", "line",
}  # fmt: skip


def _copy(ledger_path: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ledger_path, into / "ledger.db")
    return into / "ledger.db"


def _changed_by_hand(ledger_path: Path, into: Path, change: str) -> Path:
    """A copy of the ledger whose `ssh` outcome an intruder with write access changed (`SET change`)."""
    copy = _copy(ledger_path, into)
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        trigger = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'agent_actions_no_update'").fetchone()[0]
        conn.execute("DROP TRIGGER agent_actions_no_update")
        conn.execute(f"UPDATE agent_actions SET {change} WHERE action = 'ssh'")
        conn.execute(trigger)
    finally:
        conn.close()
    return copy


def _report(ledger_path: Path, out: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], Page]:
    proc = run_cli(ledger_path, "ledger", "report", "--html", str(out), *args, **env)
    return proc, parse(out.read_text(encoding="utf-8")) if out.exists() else Page()


def _numbers(cells: dict[str, str]) -> dict[str, int]:
    return {name: int(value.replace(",", "")) for name, value in cells.items()}


def test_the_page_shows_the_ledgers_own_figures_and_the_head_it_verified(written: Path, tmp_path: Path) -> None:
    proc, page = _report(written, tmp_path / "report.html")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no terminal: no progress
    outcomes = rows(written)
    head = max((row for table in TABLES for row in rows(written, table)), key=lambda row: row["seq"])
    assert proc.stdout.splitlines() == [
        f"report {tmp_path / 'report.html'}: {len(outcomes)} calls (all recorded); ledger {written}: {head['seq']} "
        f"rows, head seq {head['seq']} {head['row_hash']}: OK"
    ]
    assert {"status": "ok", "hash": head["row_hash"]} == {
        "status": next(a["data-status"] for tag, a in page.elements if a.get("id") == "status"),
        "hash": re.search(r"hash (v1:sha256:[0-9a-f]{64})", page.text)[1],  # type: ignore[index]
    }
    assert _numbers(page.column("decisions", 1)) == Counter(row["decision"] for row in outcomes)
    assert set(Counter(row["decision"] for row in outcomes)) == {"EXECUTE", "ESCALATE", "ERROR"}
    assert _numbers(page.column("agents", 1)) == Counter(row["agent_id"] for row in outcomes)
    assert len(page.rows("agents")) == 2
    assert {(kind, error): int(n) for kind, error, n in page.rows("kinds")} == Counter(
        ("refused" if row["refused"] else "error", row["error_type"]) for row in outcomes if row["decision"] == "ERROR"
    )
    spent: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in outcomes:
        if row["prompt_tokens"] is not None:
            counts = spent[(row["agent_id"], row["llm_model"])]
            counts[:] = [counts[0] + 1, counts[1] + row["prompt_tokens"], counts[2] + row["completion_tokens"]]
    assert {(a, m): [int(v.replace(",", "")) for v in (n, p, c)] for a, m, n, p, c, _ in page.rows("tokens")} == spent
    assert spent[("llm-planner-001", "test-model")] == [2, 500, 65]
    slowest = max(outcomes, key=lambda row: row["duration_ms"])
    assert page.rows("slowest")[0][5] == slowest["request_id"]
    assert len(page.rows("slowest")) == len(outcomes)


def test_escalations_say_what_the_ledger_records_of_why(written: Path, tmp_path: Path) -> None:
    _, page = _report(written, tmp_path / "report.html")
    [escalated] = [row for row in rows(written) if row["decision"] == "ESCALATE"]
    [shown] = page.rows("escalated")
    assert shown[0] == escalated["timestamp"] and shown[9] == escalated["request_id"]
    assert shown[4:8] == ["0.55", "0.70", "test-model", "confidence 0.55 is below the threshold 0.70"]
    assert page.rows("escalations") == [["llm-planner-001", "generate_plan", "1", "0.55", "0.55"]]


def test_refused_callers_are_counted_which_tail_and_stats_do_not_show(written: Path, tmp_path: Path) -> None:
    _, page = _report(written, tmp_path / "report.html")
    events = [event for event in rows(written, "ledger_events") if event["kind"] == "caller-refused"]
    assert len(events) == 1
    assert page.rows("refused-callers") == [[events[0]["timestamp"][:10], "1"]]
    assert page.rows("refused-caller-details") == [[events[0]["timestamp"], events[0]["detail"]]]
    assert "sub=nobody" in events[0]["detail"] and "matches no agent" in events[0]["detail"]
    assert _numbers(page.column("summary", 1))["callers refused (no agent of the agents file)"] == 1


def test_text_from_the_ledger_is_shown_as_written_and_never_becomes_markup(written: Path, tmp_path: Path) -> None:
    recorded = {row["action"] for row in rows(written) if row["refused"]}
    assert set(MARKUP_TOOLS) <= recorded  # the ledger holds the markup as the callers sent it
    proc, page = _report(written, tmp_path / "report.html")
    assert proc.returncode == 0, proc.stderr
    assert {tag for tag, _ in page.elements} <= ALLOWED
    assert not [name for _, attributes in page.elements for name in attributes if name.startswith("on")]
    assert set(MARKUP_TOOLS) <= {row[0] for row in page.rows("refused-tools")}  # shown, as text
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not any(name in html for name in MARKUP_TOOLS)
    assert DISGUISED_TOOL in recorded and "\u202e" not in html
    assert DISGUISED_TOOL.replace("\u202e", "\\u202e") in {row[0] for row in page.rows("refused-tools")}


def test_the_page_loads_nothing_from_anywhere(written: Path, tmp_path: Path) -> None:
    _, page = _report(written, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    [policy] = [a for tag, a in page.elements if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert policy["content"] == CSP
    references = [
        value or "" for _, attributes in page.elements for name, value in attributes.items()
        if name in ("src", "href", "xlink:href", "srcset", "action", "data", "poster", "background")
    ]  # fmt: skip
    assert all(value.startswith(("#", "data:")) for value in references), references
    assert not re.search(r"@import|url\(\s*['\"]?(?!data:|#)", html, re.IGNORECASE)
    # The one URL in any attribute is SVG's namespace, which names and fetches nothing (URLs from the ledger, as an
    # issuer's in a refused caller's detail, are text).
    urls = {value for _, attributes in page.elements for value in attributes.values() if "://" in (value or "")}
    assert urls == {"http://www.w3.org/2000/svg"}


def test_a_broken_chain_is_said_loudly_and_exits_as_verify_does(written: Path, tmp_path: Path) -> None:
    ledger_path = _changed_by_hand(written, tmp_path / "tampered", "duration_ms = 1.0")
    proc, page = _report(ledger_path, tmp_path / "report.html")
    assert proc.returncode == 1 and proc.stdout.rstrip().endswith(": TAMPERED")
    assert "planner-mcp: THE CHAIN IS BROKEN" in proc.stderr
    assert next(a["data-status"] for tag, a in page.elements if a.get("id") == "status") == "tampered"
    assert "THE CHAIN IS BROKEN" in page.text and "its content does not match its hash" in page.text


def test_since_limits_the_calls_counted_and_a_malformed_date_is_a_usage_error(written: Path, tmp_path: Path) -> None:
    outcomes = rows(written)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    proc, page = _report(written, tmp_path / "later.html", "--since", tomorrow)
    assert proc.returncode == 0 and f"0 calls (since {tomorrow}T00:00:00.000Z)" in proc.stdout
    assert page.rows("decisions") == [["none"]] and page.rows("refused-callers") == [["none"]]
    last = outcomes[-1]["timestamp"]
    proc, page = _report(written, tmp_path / "last.html", "--since", last)
    assert _numbers(page.column("agents", 1)) == {outcomes[-1]["agent_id"]: 1}
    for bad in ("2026-13-01", "yesterday", "2026-12-06T25:00"):
        proc, _ = _report(written, tmp_path / "bad.html", "--since", bad)
        assert proc.returncode == 2 and f"--since: not an ISO date or date and time: {bad!r}" in proc.stderr
        assert proc.stdout == "" and not (tmp_path / "bad.html").exists()


def test_the_file_is_replaced_whole_and_nothing_is_left_beside_it(written: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "audit.html"
    out.parent.mkdir()
    out.write_text("an older report", encoding="utf-8")
    proc, _ = _report(written, out)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in out.parent.iterdir()] == ["audit.html"]
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>") and out.stat().st_mode & 0o777 == 0o600
    proc, _ = _report(written, tmp_path / "nowhere" / "audit.html")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"planner-mcp: cannot write the report to {tmp_path / 'nowhere' / 'audit.html'}: No such " \
        "file or directory\n"  # fmt: skip


def test_no_ledger_is_no_report(tmp_path: Path) -> None:
    proc, _ = _report(tmp_path / "missing.db", tmp_path / "report.html")
    assert proc.returncode == 4 and "there is no ledger at" in proc.stderr
    assert not (tmp_path / "report.html").exists()


def test_progress_goes_to_stderr_only_when_it_is_a_terminal(written: Path, tmp_path: Path) -> None:
    proc, shown = on_a_terminal(written, "ledger", "report", "--html", str(tmp_path / "report.html"))
    assert proc.returncode == 0 and proc.stdout.startswith(f"report {tmp_path / 'report.html'}: ")
    chained = sum(len(rows(written, table)) for table in TABLES)
    assert shown == f"\r\x1b[Kplanner-mcp: verified {chained} rows: ok; counting the figures\r\n"


def test_a_keyed_chain_without_its_key_is_reported_as_not_verified(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "ledger.key"
    key_file.parent.mkdir()
    key_file.write_bytes(b"0123456789abcdef0123456789abcdef")
    key_file.chmod(0o600)
    ledger_path = tmp_path / "ledger" / "ledger.db"
    record(ledger_path, ledger_key_file=key_file)
    proc, page = _report(ledger_path, tmp_path / "unkeyed.html")
    assert proc.returncode == 4 and proc.stdout.rstrip().endswith(": UNVERIFIED")
    assert next(a["data-status"] for tag, a in page.elements if a.get("id") == "status") == "unverified"
    assert "NOT VERIFIED" in page.text and "PLANNER_MCP_LEDGER_KEY_FILE" in page.text
    proc, page = _report(ledger_path, tmp_path / "keyed.html", PLANNER_MCP_LEDGER_KEY_FILE=str(key_file))
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith(": OK") and "keyed (HMAC)" in page.text


def test_dates_written_by_hand_far_apart_draw_only_the_newest_periods_and_say_so(written: Path, tmp_path: Path) -> None:
    ledger_path = _changed_by_hand(written, tmp_path / "tampered", "timestamp = '1900-01-01T00:00:00.000Z'")
    proc, page = _report(ledger_path, tmp_path / "report.html")
    assert proc.returncode == 1  # rows written by hand: the chain says so
    month = rows(written)[0]["timestamp"][:7]
    assert "Calls per month" in page.text and f"Only the newest {MOST_BARS:,} months are drawn;" in page.text
    assert f"{month} EXECUTE: " in page.text and "1900-01 ERROR" not in page.text
    assert _numbers(page.column("decisions", 1))["ERROR"] == Counter(r["decision"] for r in rows(written))["ERROR"]
