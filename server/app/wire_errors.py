"""How a refused or failed prompt or resource read is answered: a JSON-RPC error whose code is the one the MCP
spec of the session's protocol version gives, and whose message starts with the error kind.

- Prompts (both eras' spec: "Invalid prompt name: -32602", "Missing required arguments: -32602", "Internal
  errors: -32603"): what the caller can fix (a name that is not a prompt here, invalid arguments) is -32602.
- Resources: one that does not exist, because its URI is no resource of this server or because the store has
  no such entry, is "resource not found": -32002 for 2025-11-25 and the handshake eras before it, -32602 from
  2026-07-28 (SEP-2164 made -32602 a MUST and retired -32002), with the URI in `data` as both ask. Arguments
  the caller can fix (a name that is not a name) are -32602.
- What fails on our side, whatever the caller sent (the ledger, the store, a bug), is -32603 for both.
"""

from mcp.shared.exceptions import MCPError
from mcp.types import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from contracts import ErrorInfo, ErrorKind

__all__ = ["RESOURCE_NOT_FOUND", "prompt_error", "read_error"]

RESOURCE_NOT_FOUND = -32002
"""The 2025-11-25 spec's code for a resource that does not exist (the SDK defines no name for it)."""

_CALLERS_TO_FIX = frozenset({ErrorKind.FORBIDDEN_ACTION, ErrorKind.INVALID_INPUT, ErrorKind.INVALID_NAME})
"""The refusals of a request the caller can correct: a name that is not one of ours, arguments that do not fit."""


def prompt_error(error: ErrorInfo) -> MCPError:
    code = INVALID_PARAMS if error.type in _CALLERS_TO_FIX else INTERNAL_ERROR
    return MCPError(code=code, message=f"{error.type}: {error.message}")


def read_error(error: ErrorInfo, *, uri: str, exists: bool, protocol_version: str) -> MCPError:
    """`exists`: the URI names a resource of this server (its entry may still be missing from the store). `uri` is
    echoed in `data`: pass it bounded and scrubbed, like any text of the caller's that is echoed."""
    if not exists or error.type == ErrorKind.NOT_FOUND:
        code = RESOURCE_NOT_FOUND if protocol_version in HANDSHAKE_PROTOCOL_VERSIONS else INVALID_PARAMS
    else:
        code = INVALID_PARAMS if error.type in _CALLERS_TO_FIX else INTERNAL_ERROR
    return MCPError(code=code, message=f"{error.type}: {error.message}", data={"uri": uri})
