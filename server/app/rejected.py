"""Requests the SDK rejects before any handler of ours runs, recorded as refusals all the same.

The SDK checks a request's params against the method's schema before it calls the server's handler: a
`tools/call` whose `arguments` is a string, or whose `name` is missing or a number, is answered -32602 and
never reaches `call_tool`, so the gate never sees it. Such a request still named a capability, and the
ledger is the record of every one of those, allowed or refused: this middleware (the SDK's public seam around
every request, outside its validation) sees the rejection, has the gate record it as a refusal, and lets the
SDK answer the client as it would have. Only the error path does any work.
"""

from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types.methods import parse_client_request
from pydantic import ValidationError

from server.governance.gate import Gate

__all__ = ["RecordRejected"]

_GOVERNED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
"""The methods that pass the gate, and the param that names what each one asks for."""
_SHOWN_PROBLEMS = 3
_SHOWN_CHARS = 40


class RecordRejected:
    """Server middleware: a `tools/call`, `prompts/get` or `resources/read` whose params the SDK rejects is
    recorded as an INVALID_INPUT refusal; the client still gets the SDK's -32602."""

    def __init__(self, via: Callable[[str], str], gate: Callable[[Any], Gate | None]) -> None:
        """`via` says in the ledger how a request arrived (the method, and the caller over HTTP with OAuth); `gate`
        is the gate of the request's caller's agent, given the lifespan's runtime (None for no agent's caller)."""
        self._via = via
        self._gate = gate

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        try:
            return await call_next(ctx)
        except ValidationError:
            key = _GOVERNED.get(ctx.method)
            if key is not None and ctx.request_id is not None and (problem := _rejected(ctx)) is not None:
                await self._record(ctx, key, problem)
            raise

    async def _record(self, ctx: ServerRequestContext[Any, Any], key: str, problem: str) -> None:
        gate = self._gate(ctx.lifespan_context)
        if gate is None:
            return
        params: Mapping[str, Any] = ctx.params if isinstance(ctx.params, Mapping) else {}
        name = params.get(key)
        # What was sent besides the name (and the protocol's own `_meta`): `arguments` most often. A name that is
        # not a string is kept with them, and the method stands for it.
        sent = {k: v for k, v in params.items() if k != "_meta" and not (k == key and isinstance(v, str))}
        await gate.refuse_malformed(
            name if isinstance(name, str) else ctx.method,
            sent,
            problem,
            client_request_id=str(ctx.request_id),
            via=self._via(ctx.method),
            method=ctx.method,
        )


def _rejected(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """What the SDK's own check finds wrong with the request's params, or None when it finds nothing (the
    ValidationError came from somewhere else, and is not a rejected request)."""
    try:
        parse_client_request(ctx.method, ctx.protocol_version, ctx.params)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)  # field names and rules: no values
        # A location may hold a key of the caller's: each part is bounded like any echo (the gate scrubs the text).
        shown = "; ".join(
            f"{'.'.join(str(part)[:_SHOWN_CHARS] for part in e['loc'])}: {e['msg']}" for e in errors[:_SHOWN_PROBLEMS]
        )
        return shown + (f" (and {len(errors) - _SHOWN_PROBLEMS} more)" if len(errors) > _SHOWN_PROBLEMS else "")
    except (KeyError, ValueError):  # a method or version the SDK does not know: not a params rejection
        return None
    return None
