"""`openai`, `hvac` (and `requests`, under it) and `psycopg` cost start-up time only to servers that use them, and
their first import blocks no call; the imports a server does make are not slowed by the garbage collector.

Each case runs in a fresh interpreter: this test process has imported both long ago.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import API_KEY
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import host_env

pytestmark = pytest.mark.subprocess

_PROBE = textwrap.dedent(
    """
    import json, sys, threading
    import anyio
    from mcp import Client

    imported_in = {}

    def hook(event, args):
        if event == "import" and args[0] in ("openai", "hvac", "requests", "psycopg") and args[0] not in imported_in:
            imported_in[args[0]] = threading.current_thread() is threading.main_thread() and "event loop" or "worker"

    sys.addaudithook(hook)
    from server import Settings, build_server

    async def main():
        seen = {}
        async with Client(build_server(Settings.from_env())) as client:
            await client.list_tools()
            await client.call_tool("read_docs", {"name": "backup-restore"})
            await client.call_tool("list_docs", {})
            seen["after reads"] = sorted(imported_in)
            if len(sys.argv) > 1:
                result = await client.call_tool("analyze", {"description": "Is the cluster healthy?"})
                seen["analyze"] = result.structured_content["decision"]
        seen["imported in"] = imported_in
        print(json.dumps(seen))

    anyio.run(main)
    """
)


def _probe(ledger_path: Path, *args: str, **env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=host_env(ledger_path, PYTHONPATH=str(Path(__file__).parents[2]), **env),
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_a_server_on_the_file_store_and_a_sqlite_ledger_never_imports_openai_hvac_or_psycopg(ledger_path: Path) -> None:
    seen = _probe(ledger_path)
    assert seen["after reads"] == []
    assert seen["imported in"] == {}


def test_the_first_llm_call_imports_openai_in_a_worker_thread_not_on_the_event_loop(
    ledger_path: Path, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text("The cluster is healthy."))
    env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}
    seen = _probe(ledger_path, "analyze", **env)
    assert seen["after reads"] == []
    assert seen["analyze"] in ("EXECUTE", "ESCALATE")  # answered, not an error
    assert seen["imported in"] == {"openai": "worker"}


def test_a_postgresql_ledger_loads_its_driver_in_a_worker_thread_not_on_the_event_loop(
    ledger_path: Path, pg_ledger: str
) -> None:
    seen = _probe(ledger_path, PLANNER_MCP_LEDGER=pg_ledger)
    assert seen["after reads"] == ["psycopg"]
    assert seen["imported in"] == {"psycopg": "worker"}


_GC_PROBE = textwrap.dedent(
    """
    import gc, json, sys
    if len(sys.argv) > 1:
        gc.disable()
    collections = []
    gc.callbacks.append(lambda phase, info: phase == "stop" and collections.append(info["generation"]))
    import server
    print(json.dumps({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "collections": len(collections)}))
    """
)


@pytest.mark.parametrize("collector_off_before", [False, True])
def test_importing_the_server_runs_no_collection_and_freezes_what_it_built(
    ledger_path: Path, collector_off_before: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, *(["off"] if collector_off_before else [])],
        capture_output=True,
        text=True,
        timeout=60,
        env=host_env(ledger_path, PYTHONPATH=str(Path(__file__).parents[2])),
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    # Without the pause there are ~200 collections while the modules load, ~60 ms of a ~600 ms start.
    assert seen["collections"] == 0
    if collector_off_before:  # the program's own choice stands: still off, and nothing frozen for it
        assert seen == {"enabled": False, "frozen": 0, "collections": 0}
    else:  # on again afterwards, with the ~90,000 objects the imports built kept out of every collection
        assert seen["enabled"] is True and seen["frozen"] > 50_000
