"""The floors planner-mcp is measured against: a plain MCPServer with the same tools and the same payloads.

`python -m bench.floor_server FIXTURE DATA_DIR [--strict] [--audit LEDGER] [--http PORT]` serves, on stdio (or,
with `--http`, over Streamable HTTP on that loopback port), exactly the tool list the governed server showed
(captured into FIXTURE by the harness). What every floor leaves out is the governance: no allowlist, no
validation beyond the SDK's, no envelope built from models, no ledger.

With `--strict`, it is the sdk floor: each call is answered with the governed server's captured answer to
that tool as it is, only its request id new (no file read, no copy of the payload). With `--strict --audit`,
it is the strict floor, the least a durable audit of a call can cost: that, plus exactly one row per call
committed to a SQLite file in WAL mode with `synchronous=FULL`, in one trip to a worker thread (the commit's
fsync must not block the event loop), one connection behind a lock, one commit per call. The read targets
and the throughput targets are judged against it.

Without `--strict` are the floors judged before (reported still, judged no more). The bare floor answers with
a payload of the same shape and size, the document read afresh and the payload deep-copied on every call, a
new request id and a new clock. With `--audit`, it is the durable floor: one row per call in WAL at
`synchronous=FULL`; the file read and the commit each take their own trip to a worker thread. With `--audit
--intent`, it is the intent floor: the durable floor that also commits an intent row before the read of each
read tool, as planner-mcp's design asks, without waiting for the disk (`synchronous=NORMAL`; the synced row
that follows flushes both): how much of planner-mcp's cost above the durable floor is the intent its design
records, and how much is the rest of its governance.

Only `mcp` (and, for the LLM tools, `openai`, imported on first use; over HTTP, `uvicorn`) is imported: this
process's start-up time is the floor for planner-mcp's.
"""

import argparse
import copy
import json
import sqlite3
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent, Tool

__all__ = ["Audit", "FloorServer", "StrictFloor", "main"]

_DOC_SUFFIXES = (".md", ".txt", ".json")


class Audit:
    """One committed row per call: WAL, synchronous=FULL. With `intents`, an unsynced intent row before it.

    One connection, used by one call at a time (the lock): calls in flight together run in different worker
    threads. Autocommit (`isolation_level=None`): each INSERT is a transaction of its own, committed and, at
    synchronous=FULL, synced before `record` returns."""

    def __init__(self, path: Path, *, intents: bool = False) -> None:
        self.intents = intents
        self._lock = threading.RLock()  # the intent's insert takes it again
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        for table in ("calls", "intents") if intents else ("calls",):
            columns = "id INTEGER PRIMARY KEY, timestamp TEXT, tool TEXT, arguments TEXT"
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")

    def record(self, tool: str, arguments: dict[str, Any]) -> None:
        self._insert("calls", tool, arguments)

    def record_intent(self, tool: str, arguments: dict[str, Any]) -> None:
        """Commit the intent without waiting for the disk: the next `record` syncs it with its own row."""
        with self._lock:
            self._conn.execute("PRAGMA synchronous = NORMAL")
            try:
                self._insert("intents", tool, arguments)
            finally:
                self._conn.execute("PRAGMA synchronous = FULL")

    def _insert(self, table: str, tool: str, arguments: dict[str, Any]) -> None:
        row = (_now(), tool, json.dumps(arguments, sort_keys=True))
        with self._lock:
            self._conn.execute(f"INSERT INTO {table} (timestamp, tool, arguments) VALUES (?, ?, ?)", row)


class StrictFloor(MCPServer[None]):
    """The sdk floor, and with an audit the strict floor: the captured answer as it is, and the one commit."""

    def __init__(self, fixture: dict[str, Any], audit: Audit | None = None) -> None:
        super().__init__(name="strict" if audit else "sdk")
        self._tools = [Tool.model_validate(tool) for tool in fixture["tools"]]
        self._payloads: dict[str, dict[str, Any]] = fixture["payloads"]
        self._audit = audit

    async def list_tools(self) -> list[Tool]:
        return list(self._tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[None, Any] | None = None
    ) -> CallToolResult:
        if self._audit is not None:
            await anyio.to_thread.run_sync(self._audit.record, name, arguments)
        payload = {**self._payloads[name], "request_id": uuid.uuid4().hex}  # a new top level; the rest shared
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
            structured_content=payload,
            is_error=False,
        )


class FloorServer(MCPServer[None]):
    def __init__(self, fixture: dict[str, Any], data_dir: Path, audit: Audit | None = None) -> None:
        super().__init__(name="floor")
        self._tools = [Tool.model_validate(tool) for tool in fixture["tools"]]
        self._payloads: dict[str, dict[str, Any]] = fixture["payloads"]
        self._llm: dict[str, Any] = fixture.get("llm", {})
        self._data_dir = data_dir
        self._audit = audit
        self._client: Any = None

    async def list_tools(self) -> list[Tool]:
        return list(self._tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[None, Any] | None = None
    ) -> CallToolResult:
        payload = copy.deepcopy(self._payloads[name])
        payload["request_id"] = uuid.uuid4().hex
        payload["timestamp"] = _now()
        if name == "read_docs":
            payload["data"]["name"] = arguments["name"]
            payload["data"]["content"] = await anyio.to_thread.run_sync(
                self._read_after_intent, name, arguments, "docs", arguments["name"]
            )
        elif name == "read_inventory":
            payload["data"]["content"] = await anyio.to_thread.run_sync(
                self._read_after_intent, name, arguments, "inventory", arguments.get("name") or "proxmox"
            )
        elif name == "analyze":
            # planner-mcp answers with the analysis text out of the reply's JSON, and so does the floor.
            reply = await self._complete(arguments["description"], "analysis")
            payload["llm_response"] = json.loads(reply)["analysis"]
        elif name == "generate_plan":
            # Grounded like planner-mcp's: the inventory is read and sent with the request.
            inventory = await anyio.to_thread.run_sync(self._read, "inventory", "proxmox")
            prompt = f"{arguments['description']}\n\nInventory:\n{json.dumps(inventory)}"
            payload["llm_response"] = await self._complete(prompt, "plan")
        if self._audit is not None:
            await anyio.to_thread.run_sync(self._audit.record, name, arguments)
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
            structured_content=payload,
            is_error=False,
        )

    def _read_after_intent(self, tool: str, arguments: dict[str, Any], kind: str, name: str) -> Any:
        """The read, after its intent (intent floor only) in the same trip to a worker thread, as planner-mcp does."""
        if self._audit is not None and self._audit.intents:
            self._audit.record_intent(tool, arguments)
        return self._read(kind, name)

    def _read(self, kind: str, name: str) -> Any:
        for suffix in _DOC_SUFFIXES:
            path = self._data_dir / kind / f"{name}{suffix}"
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                return json.loads(text) if suffix == ".json" else text
        raise FileNotFoundError(f"{kind}/{name}")

    async def _complete(self, prompt: str, schema: str) -> str:
        """The peer's reply, asked for in the shape planner-mcp asks for (`schema` names it), as planner-mcp does."""
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(base_url=self._llm["base_url"], api_key=self._llm["api_key"], max_retries=0)
        reply = await self._client.chat.completions.create(
            model=self._llm["model"],
            messages=[{"role": "system", "content": "You are a planner."}, {"role": "user", "content": prompt}],
            response_format={"type": "json_schema", "json_schema": {"name": schema, "schema": {"type": "object"}}},
        )
        return str(reply.choices[0].message.content)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _serve_http(server: MCPServer[None], port: int) -> None:
    """The SDK's Streamable HTTP app under uvicorn on loopback, no authentication; the SDK's own Host and Origin
    checks for a loopback server, and uvicorn's httptools parser, as planner-mcp's HTTP has."""
    import uvicorn

    app = server.streamable_http_app(host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", http="httptools", ws="none")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server")
    parser.add_argument("fixture", type=Path)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--audit", type=Path, help="commit one row per call to this file (durable, strict floors)")
    parser.add_argument("--intent", action="store_true", help="with --audit, the intent floor: an intent row first")
    parser.add_argument("--strict", action="store_true", help="the captured answers as they are: sdk, strict floors")
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on this loopback port")
    args = parser.parse_args(argv)
    if args.intent and (not args.audit or args.strict):
        parser.error("--intent needs --audit, and not --strict")
    fixture = json.loads(args.fixture.read_text(encoding="utf-8"))
    audit = Audit(args.audit, intents=args.intent) if args.audit else None
    server = StrictFloor(fixture, audit) if args.strict else FloorServer(fixture, args.data_dir, audit)
    if args.http is not None:
        _serve_http(server, args.http)
    else:
        server.run(transport="stdio")


if __name__ == "__main__":
    main(sys.argv[1:])
