"""The intent is written in the same worker-thread trip as the call's first read, and always before it;
a call that reads nothing still gets its intent, before its outcome."""

import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import LedgerError, verify
from server.app import open_runtime
from server.app.views import AgentView
from server.call.intent_first import run_blocking
from server.config.settings import Settings
from server.governance.policy import load_policy
from server.governance.spec import LOCAL_READ, Args, Deps, ToolResult, ToolSpec
from server.tools import registered_tools
from tests.conftest import call, call_once, connect, rows

pytestmark = pytest.mark.anyio

# (name of the document watched, ledger path, what was seen when it was opened). The store opens an entry by its
# name relative to its folder, so the audit event carries the bare name.
_watch: list[tuple[str, Path, list[dict[str, Any]]]] = []
_inside = threading.local()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _watch or getattr(_inside, "busy", False) or not args:
        return
    for doc, ledger, seen in _watch:
        if os.path.basename(str(args[0])) == doc:
            _inside.busy = True
            try:
                # What another process would see of the ledger at this instant: committed rows only.
                conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
                try:
                    found = conn.execute("SELECT action, seq FROM call_intents ORDER BY seq").fetchall()
                finally:
                    conn.close()
                seen.append({"thread": threading.get_ident(), "intents": found})
            finally:
                _inside.busy = False


sys.addaudithook(_audit)


async def test_the_intent_is_committed_before_the_document_is_opened_in_the_same_thread(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    doc = "backup-restore.md"
    seen: list[dict[str, Any]] = []
    _watch.append((doc, ledger_path, seen))
    try:
        async with connect(make_settings()) as client:
            await call(client, "list_docs")  # the ledger exists, with one call in it
            result, output = await call(client, "read_docs", {"name": "backup-restore"})
    finally:
        _watch.pop()
    assert not result.is_error
    [opened] = seen
    # Committed and visible from another connection before the read, at the seq the output reports.
    assert ("read_docs", output["provenance"]["ledger_seq"]) in opened["intents"]
    assert opened["thread"] != threading.get_ident()  # the read ran in a worker thread, not on the event loop


async def test_a_call_that_fails_before_reading_still_records_its_intent_before_its_outcome(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    # No LLM is configured: analyze fails before any request, and before any store read.
    result, output = await call_once(make_settings(), "analyze", {"description": "Which node is busiest?"})
    assert result.is_error and output["error"]["type"] == "LLM_NOT_CONFIGURED"
    [intent] = rows(ledger_path, "call_intents")
    [outcome] = rows(ledger_path)
    assert outcome["intent_id"] == intent["id"] and outcome["seq"] == intent["seq"] + 1
    assert output["provenance"]["ledger_seq"] == intent["seq"]
    assert verify(ledger_path).status == "ok"


async def test_a_ledger_failure_after_the_intent_is_named_as_such_and_the_call_still_gets_its_outcome(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    # A step of our own that fails on the ledger once the intent is in (no shipped tool does this today):
    # the gate must not claim that nothing was read, and must still try to close the call.
    async def reads_then_fails(args: Args, deps: Deps) -> ToolResult:
        await run_blocking(lambda: None)  # the intent is written here
        raise LedgerError("the ledger went away mid-call", "io")

    spec = ToolSpec(
        "probe", "Probe", "A step that fails on the ledger.", ("read_docs",), Args, reads_then_fails, LOCAL_READ
    )
    settings = make_settings()
    agent = load_policy(settings.policy_path)
    async with open_runtime(settings, [AgentView(agent, {**registered_tools(agent), "probe": spec})]) as runtime:
        output = await runtime.gate.call("probe", {})
    assert output.error is not None and output.error.type == "LEDGER_UNAVAILABLE"
    assert "could not finish" in output.error.message and "Nothing was read" not in output.error.message
    [intent] = rows(ledger_path, "call_intents")
    [outcome] = rows(ledger_path)
    assert outcome["intent_id"] == intent["id"] and outcome["error_type"] == "LEDGER_UNAVAILABLE"
