"""Fail closed: when the ledger cannot record, nothing is read, no LLM is called, and the client is told why."""

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from server import Settings
from server.config.settings import BUNDLED_DATA, LLMConfig
from server.stores import FileStore
from tests.conftest import call, call_once, connect, rows
from tests.file_access import file_accesses_under
from tests.peers.openai_server import FakeOpenAI, Reply

pytestmark = pytest.mark.anyio


@pytest.fixture
def broken_ledger(tmp_path: Path) -> Path:
    """A ledger whose directory is a regular file: it cannot be opened (root ignores permission bits)."""
    blocker = tmp_path / "blocked"
    blocker.write_text("not a directory", encoding="utf-8")
    return blocker / "ledger.db"


def test_the_audit_hook_sees_every_store_read() -> None:
    store = FileStore(BUNDLED_DATA)
    store.read_doc_now("backup-restore")  # the first read also opens the data folder, by its full path
    with file_accesses_under(BUNDLED_DATA) as seen:
        store.read_doc_now("backup-restore")
        store.list_docs_now()
    assert "backup-restore.md" in seen and seen.count("docs") == 2  # so the zero counts below mean something


async def test_with_an_unwritable_ledger_a_read_reads_nothing_and_says_why(
    make_settings: Callable[..., Settings], broken_ledger: Path, mode: str
) -> None:
    async with connect(make_settings(ledger_path=broken_ledger), mode) as client:
        with file_accesses_under(BUNDLED_DATA) as seen:
            for tool, args in [("read_docs", {"name": "backup-restore"}), ("list_docs", {}), ("read_inventory", {})]:
                result, output = await call(client, tool, args)
                assert result.is_error and output["error"]["type"] == "LEDGER_UNAVAILABLE"
                assert output["data"] is None
                assert "Nothing was read" in output["error"]["message"]
                assert "PLANNER_MCP_LEDGER" in output["error"]["recommended_action"]
    assert seen == []


async def test_with_an_unwritable_ledger_no_llm_is_called(
    make_settings: Callable[..., Settings], broken_ledger: Path, llm: FakeOpenAI
) -> None:
    settings = make_settings(
        ledger_path=broken_ledger, llm=LLMConfig(api_key="k" * 20, base_url=llm.base_url, model="test-model")
    )
    async with connect(settings) as client:
        for tool in ("generate_plan", "analyze"):
            result, output = await call(client, tool, {"description": "Add a VM"})
            assert result.is_error and output["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert llm.requests == []


async def test_a_refusal_with_an_unwritable_ledger_is_still_a_refusal(
    make_settings: Callable[..., Settings], broken_ledger: Path
) -> None:
    result, output = await call_once(make_settings(ledger_path=broken_ledger), "ssh")
    assert result.is_error and output["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert "refused" in output["error"]["message"]


async def test_calls_succeed_again_once_the_ledger_is_fixed_without_a_restart(
    make_settings: Callable[..., Settings], broken_ledger: Path
) -> None:
    async with connect(make_settings(ledger_path=broken_ledger)) as client:
        failed, _ = await call(client, "list_docs")
        broken_ledger.parent.unlink()
        healed, output = await call(client, "list_docs")
    assert failed.is_error and not healed.is_error
    assert [r["request_id"] for r in rows(broken_ledger)] == [output["request_id"]]


async def test_when_the_outcome_cannot_be_recorded_the_result_is_withheld(
    make_settings: Callable[..., Settings], ledger_path: Path, llm: FakeOpenAI
) -> None:
    # The intent is recorded; while the model answers, another process holds the ledger's write lock past the busy
    # timeout, so the outcome cannot be written and the result must not leave.
    llm.default = Reply.text("an answer the server will not let out", delay=0.5)
    config = LLMConfig(api_key="sk-test-planner-0123456789abcdefghij", base_url=llm.base_url, model="m", timeout_s=5)
    settings = make_settings(llm=config, ledger_busy_timeout_s=0.2)
    outputs: list[dict[str, Any]] = []
    answered = anyio.Event()
    async with connect(settings) as client, anyio.create_task_group() as tg:

        async def ask() -> None:
            outputs.append((await call(client, "analyze", {"description": "Why?"}))[1])
            answered.set()

        tg.start_soon(ask)
        await anyio.to_thread.run_sync(llm.wait_for_requests, 1)
        holder = sqlite3.connect(ledger_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with anyio.fail_after(10):
                await answered.wait()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    [output] = outputs
    assert output["decision"] == "ERROR" and output["error"]["type"] == "LEDGER_UNAVAILABLE"
    assert "withheld" in output["error"]["message"] and "locked" in output["error"]["message"]
    assert output["llm_response"] is None and "not let out" not in json.dumps(output)
    assert len(rows(ledger_path, "call_intents")) == 1  # the intent is there: an incomplete call, visible to audit
    assert rows(ledger_path) == []
