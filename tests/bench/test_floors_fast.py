"""The strict floor is what it says: the captured answer as it is (no file read), and exactly one row per call,
each in a commit of its own, with calls in flight together; the sdk floor is the same without the commit."""

import json
import sqlite3
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TextIO

import anyio
import pytest

from bench.sessions import open_session
from bench.wire import stdio_peer
from bench.workspace import READS, Workspace

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]


def _commits(ledger: Path) -> int:
    """The commit frames in the ledger's WAL: frames whose header gives the database's size after the commit
    (other frames give zero). Fewer pages than the auto-checkpoint's 1000 are written, so none is checkpointed."""
    wal = ledger.with_name(ledger.name + "-wal").read_bytes()
    page = int.from_bytes(wal[8:12], "big")
    return sum(int.from_bytes(wal[at + 4 : at + 8], "big") != 0 for at in range(32, len(wal), 24 + page))


async def test_the_strict_floor_commits_one_row_per_call_each_in_a_commit_of_its_own(
    workspace: Workspace, errlog: TextIO
) -> None:
    ledger = workspace.root / "strict-stdio-floor.db"
    with stdio_peer(workspace.strict(), errlog) as peer:
        before = _commits(ledger)
        peer.run(READS["read_inventory"], 40, concurrency=8)
        peer.run(READS["read_docs"], 10)
        commits = _commits(ledger) - before
    assert commits == 50
    with sqlite3.connect(ledger) as conn:
        assert dict(conn.execute("SELECT tool, count(*) FROM calls GROUP BY tool")) == {
            "read_inventory": 40,
            "read_docs": 10,
        }
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_the_strict_and_sdk_floors_answer_the_captured_payload_without_reading_a_file(
    workspace: Workspace, errlog: TextIO
) -> None:
    captured = json.loads(workspace.fixture.read_text(encoding="utf-8"))["payloads"]["read_docs"]
    (workspace.data / "docs" / "backup-restore.md").unlink()  # the bare floor would fail to read it now
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            floors = [await open_session(stack, launch, errlog) for launch in (workspace.strict(), workspace.sdk())]
            answers = [(await floor.call(READS["read_docs"])).structured_content for floor in floors]
    for answer in answers:
        assert answer is not None and answer["request_id"] != captured["request_id"]
        assert {**answer, "request_id": captured["request_id"]} == captured
    assert not (workspace.root / "sdk-stdio-floor.db").exists()
