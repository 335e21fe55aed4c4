"""Each HTTP request acts as its caller's agent, or is refused: a caller the agents file gives to no agent (or to
two equally) gets 403, a line in the refusal log and a `caller-refused` row in the ledger, and reaches nothing.

It sits inside authentication, where the request's caller is known, and before the session manager, so a caller
of no agent can neither open a session nor use one.
"""

import json
from collections.abc import Awaitable, Callable

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.types import ASGIApp, Receive, Scope, Send

from server.call.callers import identity_of
from server.governance.roster import Roster
from server.transports.http.refusals import note_refusal

__all__ = ["ActsAsAgent"]

_BODY = json.dumps({
    "error": "forbidden",
    "error_description": "This caller acts as no agent of this server. Ask its operator to add the caller to an agent "
    "in the agents file (PLANNER_MCP_AGENTS).",
}).encode()  # fmt: skip
"""The same for every such caller: which agents exist, and why it matched none or two, are the operator's to read
(in the log and the ledger), not the caller's."""


class ActsAsAgent:
    """ASGI middleware: a request passes only when its caller acts as exactly one agent."""

    def __init__(self, app: ASGIApp, roster: Roster, record: Callable[[str], Awaitable[None]]) -> None:
        """`record` puts a refused caller in the ledger, with what was found wrong (never its token)."""
        self._app = app
        self._roster = roster
        self._record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        user = scope.get("user")
        token = user.access_token if isinstance(user, AuthenticatedUser) else None
        judgement = self._roster.judge(identity_of(token))
        if judgement.agent is not None:
            await self._app(scope, receive, send)
            return
        note_refusal("no_agent", judgement.problem)
        await self._record(f"{scope.get('method', '-')} {scope.get('path', '-')}: {judgement.problem}")
        await send({
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": _BODY})
