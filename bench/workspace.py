"""What every section shares: the data directory, the captured fixture, and the servers to start."""

import json
import secrets
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.processes import Launch, floor, planner
from bench.sessions import Call, open_session

__all__ = ["LLM_MODEL", "READS", "Workspace", "capture_fixture", "document_name", "make_data_dir"]

_EXAMPLE_DATA = Path(__file__).resolve().parents[1] / "server" / "data"
LLM_MODEL = "bench-model"
_LLM_KEY = "sk-bench-0123456789abcdefghijklmnop"

READS = {
    "read_docs": Call("read_docs", {"name": "backup-restore"}),
    "read_inventory": Call("read_inventory", {}),
}
LLM_CALLS = {
    "analyze": Call("analyze", {"description": "Which nodes have the least free memory?"}),
    "generate_plan": Call("generate_plan", {"description": "Add a VM to the prod pool"}),
}


def document_name(size: int) -> str:
    return f"bench-{size}b"


def make_data_dir(root: Path, doc_sizes: tuple[int, ...]) -> Path:
    """The example data set, plus one runbook of exactly each size in `doc_sizes` bytes."""
    data = root / "data"
    shutil.copytree(_EXAMPLE_DATA, data)
    line = "- Check the node's free memory with `pvesh get /nodes/{node}/status` before migrating guests.\n"
    for size in doc_sizes:
        text = ("# Growth runbook\n\n" + line * (size // len(line) + 1))[:size]
        (data / "docs" / f"{document_name(size)}.md").write_text(text, encoding="utf-8")
    return data


@dataclass(frozen=True)
class Workspace:
    root: Path
    data: Path
    fixture: Path
    llm_base_url: str
    http_token: str = field(default_factory=lambda: secrets.token_hex(16))
    """The bearer token planner-mcp over HTTP is started with, and the fast client sends."""

    def llm_env(self) -> dict[str, str]:
        return {"OPENAI_BASE_URL": self.llm_base_url, "OPENAI_API_KEY": _LLM_KEY, "PLANNER_MCP_MODEL": LLM_MODEL}

    def planner(self, name: str, ledger: str | Path, **env: str) -> Launch:
        return planner(name, ledger=self._ledger(ledger), data_dir=self.data, **self.llm_env(), **env)

    def planner_http(self, name: str, ledger: str | Path) -> Launch:
        """planner-mcp over Streamable HTTP, on a free loopback port, `http_token` its bearer token."""
        return planner(name, ledger=self._ledger(ledger), data_dir=self.data, http=self.http_token, **self.llm_env())

    def _ledger(self, ledger: str | Path) -> Path:
        return ledger if isinstance(ledger, Path) else self.root / ledger / "ledger.db"

    def strict(self, name: str = "strict", *, http: bool = False) -> Launch:
        """The strict floor, its ledger a file of its own (one per name and transport)."""
        audit = self.root / f"{name}-{'http' if http else 'stdio'}-floor.db"
        return floor(name, fixture=self.fixture, data_dir=self.data, audit=audit, strict=True, http=http)

    def sdk(self, name: str = "sdk", *, http: bool = False) -> Launch:
        return floor(name, fixture=self.fixture, data_dir=self.data, strict=True, http=http)

    def bare(self, name: str = "bare", *, http: bool = False) -> Launch:
        return floor(name, fixture=self.fixture, data_dir=self.data, http=http)

    def durable(self, name: str = "durable") -> Launch:
        return floor(name, fixture=self.fixture, data_dir=self.data, audit=self.root / "durable-floor.db")

    def intent_floor(self, name: str = "intent") -> Launch:
        return floor(name, fixture=self.fixture, data_dir=self.data, audit=self.root / "intent-floor.db", intent=True)


async def capture_fixture(root: Path, data: Path, llm_base_url: str, errlog: TextIO) -> Workspace:
    """Ask planner-mcp for its tool list and one answer of each measured tool, for the floors to serve."""
    workspace = Workspace(root, data, root / "fixture.json", llm_base_url)
    async with AsyncExitStack() as stack:
        session = await open_session(stack, workspace.planner("fixture", "fixture-ledger"), errlog)
        tools = (await session.client.list_tools()).tools
        payloads: dict[str, Any] = {}
        for call in (*READS.values(), *LLM_CALLS.values()):
            payloads[call.tool] = (await session.call(call)).structured_content
    for call in LLM_CALLS.values():
        answer = payloads[call.tool] or {}
        if not answer.get("confidence"):  # an unparsed reply is answered with confidence 0 and kept raw
            raise RuntimeError(
                f"planner-mcp could not use the LLM peer's reply to {call.tool} ({answer.get('notes_for_humans')}): "
                "the bench would time its fallback path, not the tool"
            )
    fixture = {
        "tools": [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools],
        "payloads": payloads,
        "llm": {"base_url": llm_base_url, "api_key": _LLM_KEY, "model": LLM_MODEL},
    }
    workspace.fixture.write_text(json.dumps(fixture), encoding="utf-8")
    return workspace
