"""One agent run through a real framework: its script in the framework's environment, `planner-mcp serve` as its
stdio server, the test's FakeOpenAI as its model; and what every such run must show.

The model's script is the same for every framework: read a runbook that exists, then one that does not, then
answer. What the framework sent the model (the tools it discovered, the results it passed back) is read from the
peer's recorded requests; what the framework itself held is the script's report; what the server did is read
from its ledger, as an auditor would.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

from tests.conftest import DEFAULT_TOOLS, rows
from tests.frameworks.environments import FRAMEWORKS, framework_python
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import host_env, run_cli

__all__ = ["MISSING", "RUNBOOK", "discovered", "drive", "loopback_env", "tool_results"]

RUNBOOK: Final = "vm-provisioning"
MISSING: Final = "no-such-runbook"
ANSWER: Final = "The runbook is read."

_SCRIPTS: Final = Path(__file__).parent / "scripts"
_RUN_TIMEOUT_S: Final = 120.0
_NOWHERE: Final = "http://127.0.0.1:9"
"""A proxy that refuses every connection: a framework reaching past loopback fails at once, visibly."""


def drive(name: str, script: str, llm: FakeOpenAI, ledger_path: Path, workdir: Path) -> dict[str, Any]:
    """Run `script` in framework `name`'s environment against `llm` and a `planner-mcp serve` writing
    `ledger_path`; check what every framework's run must show (the six tools offered to the model, its answer
    back, both calls in the ledger); return the script's report for the framework's own part."""
    python = framework_python(FRAMEWORKS[name])
    llm.enqueue(
        Reply.calls(("read_docs", {"name": RUNBOOK})), Reply.calls(("read_docs", {"name": MISSING})), Reply.text(ANSWER)
    )
    # The server as a user's configuration names it: this project's own `planner-mcp`, in a host's environment.
    server = {
        "command": str(Path(sys.executable).parent / "planner-mcp"),
        "args": ["serve"],
        "env": host_env(ledger_path),
    }
    given = {"server": server, "base_url": llm.base_url, "model": "test-model", "prompt": "Read the runbook."}
    done = subprocess.run(
        [str(python), str(_SCRIPTS / script), json.dumps(given)],
        capture_output=True, text=True, env=loopback_env(workdir), cwd=workdir, timeout=_RUN_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert sorted(discovered(llm)) == sorted(DEFAULT_TOOLS)
    assert report["output"] == ANSWER
    _assert_ledger(ledger_path)
    return report


def loopback_env(home: Path, **extra: str) -> dict[str, str]:
    """A framework's environment with nothing beyond loopback: every proxy variable names a port that refuses
    connections (only 127.0.0.1 goes direct), and openai-agents sends no traces to OpenAI."""
    nowhere = dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"), _NOWHERE)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "NO_PROXY": "127.0.0.1", **nowhere,
            "OPENAI_AGENTS_DISABLE_TRACING": "1", **extra}  # fmt: skip


def discovered(llm: FakeOpenAI) -> list[str]:
    """The tools the framework offered the model on its first request."""
    return [tool["function"]["name"] for tool in llm.chat_requests[0].json["tools"]]


def tool_results(llm: FakeOpenAI) -> list[str]:
    """What the framework sent the model as each tool call's result, in order (the content of `tool` messages)."""
    last = llm.chat_requests[-1].json["messages"]
    return [_text(message["content"]) for message in last if message["role"] == "tool"]


def _text(content: str | list[dict[str, Any]]) -> str:
    """A message's content as text, whether sent as a string or as a list of text parts."""
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def _assert_ledger(ledger_path: Path) -> None:
    """The two calls are in the ledger, intent and outcome, in order, and the chain verifies."""
    intents = rows(ledger_path, "call_intents")
    outcomes = rows(ledger_path)
    assert [(i["action"], json.loads(i["arguments"])) for i in intents] == [
        ("read_docs", {"name": RUNBOOK}),
        ("read_docs", {"name": MISSING}),
    ]
    assert [(o["decision"], o["error_type"]) for o in outcomes] == [("EXECUTE", None), ("ERROR", "NOT_FOUND")]
    assert [o["request_id"] for o in outcomes] == [i["request_id"] for i in intents]
    verified = run_cli(ledger_path, "ledger", "verify", "--json")
    assert verified.returncode == 0 and json.loads(verified.stdout)["status"] == "ok", verified.stdout
