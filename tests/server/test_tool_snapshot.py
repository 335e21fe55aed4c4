"""The tool list is pinned: what a client sees in tools/list must equal tests/snapshots/tools.json.

Hosts and models act on every word of a tool's description, schema and hints, so none of it may change by
accident. To change it on purpose, re-run with PLANNER_MCP_UPDATE_SNAPSHOT=1: the test then rewrites the snapshot
(and passes), and the diff of tests/snapshots/tools.json shows the change for review.
"""

import copy
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from server import Settings
from tests.conftest import DEFAULT_TOOLS, connect
from tests.processes import run_cli

SNAPSHOT = Path(__file__).parent.parent / "snapshots" / "tools.json"
UPDATE = "PLANNER_MCP_UPDATE_SNAPSHOT"
_PINNED = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
_HOW_TO_UPDATE = (
    f"If the change is intended, run `{UPDATE}=1 python -m pytest tests/server/test_tool_snapshot.py`, which "
    f"rewrites {SNAPSHOT.relative_to(Path(__file__).parent.parent.parent)}, and review its diff."
)


async def _listed(settings: Settings, mode: str = "auto") -> list[dict[str, Any]]:
    """Each tool as a client sees it over tools/list, reduced to the pinned fields."""
    async with connect(settings, mode) as client:
        with anyio.fail_after(10):
            tools = (await client.list_tools()).tools
    dumped = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]
    return [{key: tool[key] for key in _PINNED if key in tool} for tool in dumped]


def _render(tools: list[dict[str, Any]]) -> str:
    return json.dumps(tools, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _paths(listed: Any, pinned: Any, at: str) -> list[str]:
    """Where two JSON values differ, as dotted paths down to the first level that differs."""
    if isinstance(listed, dict) and isinstance(pinned, dict):
        keys = sorted(set(listed) | set(pinned))
        return [
            p
            for key in keys
            if listed.get(key) != pinned.get(key)
            for p in _paths(listed.get(key), pinned.get(key), f"{at}.{key}")
        ]
    if listed == pinned:
        return []
    return [f"{at}: now {json.dumps(listed)[:80]}, snapshot {json.dumps(pinned)[:80]}"]


def _differences(listed: list[dict[str, Any]], pinned: list[dict[str, Any]]) -> list[str]:
    """What differs, tool by tool and field by field, in words a reviewer can act on."""
    found = [tool["name"] for tool in listed]
    expected = [tool["name"] for tool in pinned]
    problems = [] if found == expected else [f"tools: listed {found}, snapshot {expected}"]
    by_name = {tool["name"]: tool for tool in pinned}
    for tool in listed:
        if tool["name"] in by_name:
            problems += _paths(tool, by_name[tool["name"]], tool["name"])
    return problems


def test_the_tool_list_is_exactly_its_snapshot(make_settings: Callable[..., Settings], mode: str) -> None:
    listed = anyio.run(_listed, make_settings(), mode)
    if os.environ.get(UPDATE) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(_render(listed), encoding="utf-8")
        return
    assert SNAPSHOT.is_file(), f"{SNAPSHOT} is missing. {_HOW_TO_UPDATE}"
    text = SNAPSHOT.read_text(encoding="utf-8")
    problems = _differences(listed, json.loads(text))
    assert not problems, "The tool list changed:\n  " + "\n  ".join(problems) + f"\n{_HOW_TO_UPDATE}"
    # Byte for byte too, so the file stays in the one form the update writes (sorted keys, indent 2, a newline).
    assert text == _render(listed), f"{SNAPSHOT} is not in the form the update writes. {_HOW_TO_UPDATE}"


def test_the_snapshot_pins_the_default_tools_with_every_field() -> None:
    pinned = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert [tool["name"] for tool in pinned] == DEFAULT_TOOLS
    for tool in pinned:
        assert set(tool) == set(_PINNED), tool["name"]
        assert set(tool["annotations"]) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}


def _changed_description(tools: list[dict[str, Any]]) -> None:
    tools[0]["description"] += " Also writes."


def _added_tool(tools: list[dict[str, Any]]) -> None:
    tools.append({**copy.deepcopy(tools[0]), "name": "write_secrets"})


def _changed_schema_field(tools: list[dict[str, Any]]) -> None:
    tools[0]["inputSchema"]["properties"]["name"]["maxLength"] = 4096


def _changed_output_schema(tools: list[dict[str, Any]]) -> None:
    del tools[-1]["outputSchema"]["properties"]["decision"]


def _flipped_hint(tools: list[dict[str, Any]]) -> None:
    tools[3]["annotations"]["destructiveHint"] = True


def _reordered(tools: list[dict[str, Any]]) -> None:
    tools.reverse()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_changed_description, "read_docs.description"),
        (_added_tool, "tools: listed"),
        (_changed_schema_field, "read_docs.inputSchema"),
        (_changed_output_schema, "read_logs.outputSchema"),
        (_flipped_hint, "generate_plan.annotations"),
        (_reordered, "tools: listed"),
    ],
)
def test_a_snapshot_that_differs_in_any_pinned_field_fails_the_comparison(
    make_settings: Callable[..., Settings], tmp_path: Path, change: Callable[[list[dict[str, Any]]], None], says: str
) -> None:
    listed = anyio.run(_listed, make_settings())
    # Edited in a copy, as a stale snapshot would be: neither the product nor the real snapshot is touched.
    stale = tmp_path / "tools.json"
    shutil.copyfile(SNAPSHOT, stale)
    pinned = json.loads(stale.read_text(encoding="utf-8"))
    assert _differences(listed, pinned) == []
    change(pinned)
    stale.write_text(_render(pinned), encoding="utf-8")
    problems = _differences(listed, json.loads(stale.read_text(encoding="utf-8")))
    assert any(says in problem for problem in problems), problems
    assert stale.read_text(encoding="utf-8") != _render(listed)


@pytest.mark.subprocess
def test_the_tools_command_agrees_with_the_snapshot_on_names_and_hints(ledger_path: Path) -> None:
    done = run_cli(ledger_path, "tools", "--json")
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    pinned = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert [tool["name"] for tool in printed] == [tool["name"] for tool in pinned] == DEFAULT_TOOLS
    assert [tool["annotations"] for tool in printed] == [tool["annotations"] for tool in pinned]
