"""Whoever can write the data folder cannot make the file store serve, or list, a file outside it: not by a
symlink, a hard link, or a folder swapped for a link while reads run."""

import json
import os
import select
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from server import Settings
from server.call.failures import ToolFailure
from server.stores import FileStore
from tests.conftest import call, connect

pytestmark = pytest.mark.anyio

CANARY = "canary-outside-the-data-folder"
_READS = 3000


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder with one runbook, `inside`, beside an outside folder the server must never serve from."""
    root = tmp_path / "data"
    (root / "docs").mkdir(parents=True)
    (root / "inventory").mkdir()
    (root / "docs" / "inside.md").write_text("# inside", encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "inside.md").write_text(CANARY, encoding="utf-8")
    (outside / "secret.md").write_text(CANARY, encoding="utf-8")
    return root


def _outside(data: Path) -> Path:
    return data.parent / "outside"


async def test_a_hard_link_to_a_file_outside_is_neither_served_nor_listed(
    make_settings: Callable[..., Settings], data: Path
) -> None:
    os.link(_outside(data) / "secret.md", data / "docs" / "secret.md")
    async with connect(make_settings(data_dir=data)) as client:
        _, read = await call(client, "read_docs", {"name": "secret"})
        _, listed = await call(client, "list_docs")
    assert read["decision"] == "ERROR" and read["error"]["type"] == "NOT_FOUND"
    assert listed["data"]["docs"] == ["inside"]
    assert CANARY not in json.dumps([read, listed])


async def test_a_docs_folder_that_is_a_link_to_an_outside_folder_is_refused_for_reads_and_lists(
    make_settings: Callable[..., Settings], data: Path
) -> None:
    (data / "docs" / "inside.md").unlink()
    (data / "docs").rmdir()
    (data / "docs").symlink_to(_outside(data), target_is_directory=True)
    async with connect(make_settings(data_dir=data)) as client:
        _, read = await call(client, "read_docs", {"name": "secret"})
        _, listed = await call(client, "list_docs")
    for output in (read, listed):
        assert output["decision"] == "ERROR" and output["error"]["type"] == "STORE_UNAVAILABLE"
        assert "docs/" in output["error"]["message"] and "symbolic link" in output["error"]["message"]
        assert "PLANNER_MCP_DATA" in output["error"]["recommended_action"]
    assert CANARY not in json.dumps([read, listed])


# The adversary is another process, so its changes race the reads for real (a thread would wait for the GIL).
# It swaps docs/ and a link to the outside folder in one step (renameat2's RENAME_EXCHANGE), back, and then
# moves docs/ away for a moment: reads meet the folder, the link, and nothing.
_SWAP_DOCS = """
import ctypes, os, sys
docs, link, aside, outside = (os.fsencode(arg) for arg in sys.argv[1:])
os.symlink(outside, link)
renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
AT_FDCWD, RENAME_EXCHANGE = -100, 2
for i in range(10_000_000):
    for _ in range(2):
        if renameat2(AT_FDCWD, docs, AT_FDCWD, link, RENAME_EXCHANGE) != 0:
            raise OSError(ctypes.get_errno(), "renameat2")
    os.rename(docs, aside)
    os.rename(aside, docs)
    if i == 0:
        print("swapping", flush=True)
"""


@contextmanager
def _swapping_docs(data: Path) -> Iterator[None]:
    """docs/ swapped with a link to the outside folder, over and over, for as long as the block runs."""
    args = [str(data / "docs"), str(data / "docs.link"), str(data / "docs.aside"), str(_outside(data))]
    swapper = subprocess.Popen([sys.executable, "-c", _SWAP_DOCS, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert swapper.stdout is not None
        ready, _, _ = select.select([swapper.stdout], [], [], 30)
        assert ready and swapper.stdout.readline() == "swapping\n"
        yield
    finally:
        swapper.kill()
        swapper.wait(timeout=10)
        if swapper.stdout is not None:
            swapper.stdout.close()


def test_a_docs_folder_swapped_for_a_link_to_an_outside_folder_while_reads_run_never_serves_it(data: Path) -> None:
    store, seen = FileStore(data), {"served": 0, "NOT_FOUND": 0, "STORE_UNAVAILABLE": 0}
    with _swapping_docs(data):
        for i in range(10 * _READS):  # reads, and every tenth a list; at least _READS, and both outcomes seen
            if i >= _READS and seen["served"] and seen["STORE_UNAVAILABLE"]:
                break
            try:
                got = store.list_docs_now() if i % 10 == 0 else store.read_doc_now("inside").content
            except ToolFailure as exc:
                assert exc.kind in seen, exc.message
                seen[exc.kind] += 1
            else:
                assert got in (["inside"], "# inside")
                seen["served"] += 1
    assert seen["served"] and seen["STORE_UNAVAILABLE"]  # the race ran: reads saw the folder and the link
