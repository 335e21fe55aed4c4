"""A raw JSON-RPC server on stdio for the fast client's tests: `python -m tests.bench.held_peer N [MODE]`.

It answers `initialize`, and holds every other request until it holds N of them; then it writes a log
notification and answers the N in reverse order, as MODE says: `ok` (a result), `error` (a JSON-RPC error),
`is-error` (a result with `isError: true`) or `stray` (a result to an id nobody asked about). A driver that has
fewer than N calls in flight at once gets no answer at all.
"""

import json
import sys
from typing import Any

__all__: list[str] = []


def _answer(ident: int, mode: str) -> dict[str, Any]:
    if mode == "error":
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": -32603, "message": "held peer failed"}}
    text = {"type": "text", "text": '{"held": true}'}
    result = {"content": [text], "structuredContent": {"held": True}, "isError": mode == "is-error"}
    return {"jsonrpc": "2.0", "id": ident + 1000 if mode == "stray" else ident, "result": result}


def _write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")


def main(holds: int, mode: str) -> None:
    held: list[int] = []
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("method") == "initialize":
            version, info = message["params"]["protocolVersion"], {"name": "held", "version": "1"}
            result = {"protocolVersion": version, "capabilities": {}, "serverInfo": info}
            _write({"jsonrpc": "2.0", "id": message["id"], "result": result})
        elif "id" in message:
            held.append(message["id"])
            if len(held) == holds:
                _write({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}})
                for ident in reversed(held):
                    _write(_answer(ident, mode))
                held.clear()
        sys.stdout.flush()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "ok")
