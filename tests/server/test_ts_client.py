"""A client we did not write: the official TypeScript SDK discovers and calls the tools over stdio.

`.ci/run` installs `@modelcontextprotocol/sdk@1.32.2` and points PLANNER_MCP_NODE_MODULES at its
node_modules; without it (or without node) this test skips and says how to get it.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEFAULT_TOOLS, rows
from tests.processes import host_env, server_command

NODE_MODULES = os.environ.get("PLANNER_MCP_NODE_MODULES")
NODE = shutil.which("node")
SCRIPT = Path(__file__).parents[1] / "clients" / "ts_client.mjs"

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(
        NODE is None or NODE_MODULES is None or not (Path(NODE_MODULES) / "@modelcontextprotocol" / "sdk").is_dir(),
        reason="the TypeScript MCP SDK is not installed: `npm install @modelcontextprotocol/sdk@1.32.2` and set "
        "PLANNER_MCP_NODE_MODULES to its node_modules (.ci/run does this)",
    ),
]


def test_the_typescript_sdk_discovers_and_calls_the_tools_over_stdio(ledger_path: Path, tmp_path: Path) -> None:
    assert NODE is not None and NODE_MODULES is not None
    # Node resolves packages from the script's own folder up, so the script runs beside a link to them.
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    script = tmp_path / SCRIPT.name
    shutil.copyfile(SCRIPT, script)
    proc = subprocess.run(
        [NODE, str(script), *server_command("serve")],
        env={**host_env(ledger_path), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert [t["name"] for t in seen["tools"]] == DEFAULT_TOOLS and all(t["readOnly"] for t in seen["tools"])
    docs, refused = seen["docs"], seen["refused"]
    assert not docs["isError"] and docs["output"]["data"]["name"] == "backup-restore"
    assert refused["isError"] and refused["output"]["error"]["type"] == "FORBIDDEN_ACTION"
    recorded = [(r["action"], r["error_type"]) for r in rows(ledger_path)]
    assert recorded == [("read_docs", None), ("execute_shell", "FORBIDDEN_ACTION")]
