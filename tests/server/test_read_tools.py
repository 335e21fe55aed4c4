import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from contracts import default_agent
from ledger import REDACTED, Ledger, Scrubber
from server import Settings
from server.call.failures import ToolFailure
from server.config.settings import BUNDLED_DATA, LLMConfig
from server.llm import LLMClient
from server.stores import FileStore
from server.tools import Deps
from server.tools.store_tools import READ_DOCS
from tests.conftest import call, call_once, connect, rows

pytestmark = pytest.mark.anyio


async def test_list_docs_names_the_bundled_runbooks(make_settings: Callable[..., Settings], mode: str) -> None:
    async with connect(make_settings(), mode) as client:
        result, output = await call(client, "list_docs")
    assert not result.is_error
    assert output["data"]["docs"] == sorted(p.stem for p in (BUNDLED_DATA / "docs").glob("*.md"))
    assert len(output["data"]["docs"]) >= 3


async def test_read_docs_returns_the_runbook_with_its_provenance(
    make_settings: Callable[..., Settings], ledger_path: Path, mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        result, output = await call(client, "read_docs", {"name": "backup-restore"})
    assert not result.is_error
    assert output["decision"] == "EXECUTE" and output["confidence"] == 1.0
    assert output["data"]["content"] == (BUNDLED_DATA / "docs" / "backup-restore.md").read_text(encoding="utf-8")
    [source] = output["provenance"]["sources"]
    assert (source["kind"], source["name"], source["store"]) == ("docs", "backup-restore", "file")
    assert source["version"].startswith("sha256:")
    [intent] = rows(ledger_path, "call_intents")
    [action] = rows(ledger_path)
    assert intent["request_id"] == action["request_id"] == output["request_id"]
    assert action["intent_id"] == intent["id"] == output["provenance"]["ledger_intent_id"]
    assert json.loads(action["arguments"]) == {"name": "backup-restore"}
    assert (action["action"], action["decision"], action["success"]) == ("read_docs", "EXECUTE", 1)
    assert action["output_digest"].startswith("sha256:") and action["duration_ms"] > 0
    assert intent["seq"] == output["provenance"]["ledger_seq"] and action["seq"] == intent["seq"] + 1
    # The client's own JSON-RPC id, to match the ledger with the host's logs.
    assert intent["client_request_id"] == action["client_request_id"] and action["client_request_id"].isdigit()
    # A digest of exactly the bytes the client got as text, and those bytes are the structured content.
    [text] = result.content
    assert text.type == "text" and json.loads(text.text) == output
    assert action["output_digest"] == f"sha256:{hashlib.sha256(text.text.encode()).hexdigest()}"


async def test_read_inventory_reads_the_default_or_a_named_inventory(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        _, default = await call(client, "read_inventory")
        _, edge = await call(client, "read_inventory", {"name": "edge-sites"})
    assert default["data"]["name"] == "proxmox" and default["data"]["content"]["cluster"]
    assert edge["data"]["name"] == "edge-sites"


async def test_a_missing_doc_is_an_error_that_points_to_list_docs(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    result, output = await call_once(make_settings(), "read_docs", {"name": "no-such-runbook"})
    assert result.is_error
    assert output["error"]["type"] == "NOT_FOUND"
    assert "list_docs" in output["error"]["recommended_action"]
    [action] = rows(ledger_path)
    assert (action["error_type"], action["success"], action["refused"]) == ("NOT_FOUND", 0, 0)


@pytest.mark.parametrize(
    "name",
    [
        "../inventory/proxmox",
        "..",
        "%2e%2e",
        "/etc/passwd",
        "docs/backup-restore",
        "api-keys/openrouter",
        "metadata/docs",
        "secret/data/docs",
        "backup-restore\x00.md",
        " backup-restore",
        "backup..restore",
        ".hidden",
        "a" * 129,
        "",
    ],
)
async def test_a_name_that_could_leave_its_folder_is_refused_before_any_read(
    make_settings: Callable[..., Settings], ledger_path: Path, name: str
) -> None:
    result, output = await call_once(make_settings(), "read_docs", {"name": name})
    assert result.is_error and output["error"]["type"] == "INVALID_NAME"
    assert "name" in output["error"]["message"]
    assert rows(ledger_path, "call_intents") == []  # refused at the gate: no intent, so nothing was read
    [action] = rows(ledger_path)
    assert (action["refused"], action["error_type"]) == (1, "INVALID_NAME")


def _data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "docs").mkdir(parents=True)
    (data / "inventory").mkdir()
    return data


async def test_a_symlink_out_of_the_docs_folder_is_neither_followed_nor_listed(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = _data_dir(tmp_path)
    outside = tmp_path / "outside.md"
    outside.write_text("private", encoding="utf-8")
    (data / "docs" / "leak.md").symlink_to(outside)
    async with connect(make_settings(data_dir=data)) as client:
        result, output = await call(client, "read_docs", {"name": "leak"})
        _, listed = await call(client, "list_docs")
    assert result.is_error and output["error"]["type"] == "NOT_FOUND"
    assert listed["data"]["docs"] == []
    assert "private" not in json.dumps(output)


async def test_a_symlink_within_the_docs_folder_is_not_followed_either(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = _data_dir(tmp_path)
    (data / "docs" / "target.md").write_text("# the runbook", encoding="utf-8")
    (data / "docs" / "alias.md").symlink_to(data / "docs" / "target.md")
    async with connect(make_settings(data_dir=data)) as client:
        _, alias = await call(client, "read_docs", {"name": "alias"})
        _, target = await call(client, "read_docs", {"name": "target"})
        _, listed = await call(client, "list_docs")
    assert alias["error"]["type"] == "NOT_FOUND"
    assert target["data"]["content"] == "# the runbook"
    assert listed["data"]["docs"] == ["target"]


async def test_a_fifo_or_folder_in_place_of_a_document_is_not_found_not_listed_and_does_not_stall(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = _data_dir(tmp_path)
    os.mkfifo(data / "docs" / "pipe.md")  # opening it for reading would wait for a writer
    (data / "docs" / "folder.md").mkdir()
    async with connect(make_settings(data_dir=data)) as client:
        with anyio.fail_after(10):
            _, pipe = await call(client, "read_docs", {"name": "pipe"})
            _, folder = await call(client, "read_docs", {"name": "folder"})
            _, listed = await call(client, "list_docs")
    assert pipe["error"]["type"] == folder["error"]["type"] == "NOT_FOUND"
    assert listed["data"]["docs"] == []


async def test_a_document_over_the_size_limit_is_refused_by_its_size_without_being_read(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = _data_dir(tmp_path)
    with (data / "docs" / "huge.md").open("wb") as sparse:
        sparse.truncate(64 << 30)  # 64 GiB of holes: reading it whole could not fit in memory
    result, output = await call_once(
        make_settings(data_dir=data, max_document_bytes=1000), "read_docs", {"name": "huge"}
    )
    assert result.is_error and output["error"]["type"] == "TOO_LARGE"
    assert f"{64 << 30} bytes" in output["error"]["message"]
    assert "PLANNER_MCP_MAX_DOCUMENT_BYTES" in output["error"]["recommended_action"]


async def test_unknown_and_wrongly_typed_arguments_are_refused(make_settings: Callable[..., Settings]) -> None:
    async with connect(make_settings()) as client:
        _, extra = await call(client, "read_docs", {"name": "backup-restore", "path": "/etc"})
        _, typed = await call(client, "read_docs", {"name": 7})
        _, huge = await call(client, "generate_plan", {"description": "x" * 70_000})
    assert extra["error"]["type"] == typed["error"]["type"] == huge["error"]["type"] == "INVALID_INPUT"
    assert "path" in extra["error"]["message"]
    assert "bytes" in huge["error"]["message"] and "'description' alone is 70002" in huge["error"]["message"]


async def test_an_empty_data_directory_says_which_setting_to_fix(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    result, output = await call_once(make_settings(data_dir=tmp_path / "empty"), "list_docs")
    assert result.is_error and output["error"]["type"] == "STORE_UNAVAILABLE"
    assert "PLANNER_MCP_DATA" in output["error"]["recommended_action"]


async def test_a_document_changed_between_reads_is_returned_afresh_and_scrubbed_afresh(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = _data_dir(tmp_path)
    doc = data / "docs" / "keys.md"
    doc.write_text("# Keys\n\nNothing here yet.\n", encoding="utf-8")
    key = "AKIA" + "Q" * 16
    async with connect(make_settings(data_dir=data)) as client:
        _, before = await call(client, "read_docs", {"name": "keys"})
        doc.write_text(f"# Keys\n\nThe backup user's key is {key}.\n", encoding="utf-8")
        _, after = await call(client, "read_docs", {"name": "keys"})
    assert before["data"]["content"] == "# Keys\n\nNothing here yet.\n"
    assert after["data"]["content"] == f"# Keys\n\nThe backup user's key is {REDACTED}.\n"
    assert "1 secret-looking value" in after["notes_for_humans"]


def test_a_secret_learnt_after_an_entry_was_read_is_redacted_from_the_next_read(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    (data / "docs" / "login.md").write_text("Log in with plain-looking-value-0123.\n", encoding="utf-8")
    store, scrubber = FileStore(data), Scrubber()
    deps = Deps(
        agent=default_agent(),
        store=store,
        llm=LLMClient(LLMConfig()),
        scrubber=scrubber,
        ledger=Ledger(tmp_path / "ledger.db"),
        default_inventory="proxmox",
    )
    assert READ_DOCS.local is not None
    args = READ_DOCS.args.model_validate({"name": "login"})
    first = READ_DOCS.local(args, deps, store)
    scrubber.add("plain-looking-value-0123")  # as a token from a Vault login, or a key read from Vault, is
    second = READ_DOCS.local(args, deps, store)
    assert first.data is not None and second.data is not None
    assert first.data["content"] == "Log in with plain-looking-value-0123.\n"
    assert second.data["content"] == f"Log in with {REDACTED}.\n"


def test_an_inventory_is_parsed_once_while_its_file_is_unchanged_and_afresh_once_it_changes(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    inventory = data / "inventory" / "lab.json"
    inventory.write_text('{"nodes": ["pve1"]}', encoding="utf-8")
    store = FileStore(data)
    first, again = store.read_inventory_now("lab"), store.read_inventory_now("lab")
    assert again.content is first.content  # the kept parse, not a second json.loads
    inventory.write_text('{"nodes": ["pve1", "pve2"]}', encoding="utf-8")
    changed = store.read_inventory_now("lab")
    assert changed.content == {"nodes": ["pve1", "pve2"]} and changed.source.version != first.source.version
    inventory.write_text('{"nodes": [', encoding="utf-8")  # a broken file is an error every time, never kept
    for _ in range(2):
        with pytest.raises(ToolFailure, match="not valid JSON"):
            store.read_inventory_now("lab")
