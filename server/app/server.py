"""The MCP server: built by a factory, its runtime owned by one lifespan, every call routed through the gate."""

import json
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import MCPServer
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.types import INVALID_REQUEST, CallToolResult, GetPromptResult, PromptMessage, TextContent
from mcp.types import Prompt as MCPPrompt
from mcp.types import PromptArgument as MCPPromptArgument
from mcp.types import Resource as MCPResource
from mcp.types import ResourceTemplate as MCPResourceTemplate
from mcp.types import Tool as MCPTool
from pydantic import AnyUrl
from starlette.applications import Starlette

from contracts import AgentOutput, Decision
from server.app.rejected import RecordRejected
from server.app.resources import POLICY_URI, route
from server.app.runtime import Runtime, open_runtime, server_version
from server.app.views import AgentView, views
from server.app.wire_errors import prompt_error, read_error
from server.call.callers import identity, via
from server.call.progress import ReportProgress
from server.config.ledger import ledger_key
from server.config.settings import Settings
from server.governance.gate import LLM_ACTION, Gate
from server.governance.roster import Roster, load_roster
from server.telemetry import NO_SIGNALS, Signals

__all__ = ["GovernedServer", "build_server", "progress_reporter", "to_call_result"]

logger = logging.getLogger("server.app")  # its name before the regrouping: log collectors filter by it

_INSTRUCTIONS = (
    "Read-only tools of an infrastructure planning agent. Use list_docs and read_docs for runbooks, "
    "read_inventory for the cluster inventory, generate_plan for an implementation plan and analyze for an "
    "analysis. Nothing here changes infrastructure; every call, allowed or refused, is recorded in an audit "
    "ledger. Each result is an AgentOutput: check `decision` (EXECUTE, ESCALATE, ERROR) and `notes_for_humans`."
)


def to_call_result(output: AgentOutput) -> CallToolResult:
    """The output as structured content, and as the same JSON in text: the bytes the ledger's digest covers."""
    return _DumpedOnce(
        content=[TextContent(type="text", text=output.sealed_json())],
        structured_content=_structured(output),
        is_error=output.decision is Decision.ERROR,
    )


_FIELDS = tuple(AgentOutput.model_fields)
_DATA = {"data"}
_WIRE_DUMP = {"by_alias": True, "mode": "json", "exclude_none": True}
"""How the SDK dumps a handler's result for the wire (see `_DumpedOnce`)."""


def _structured(output: AgentOutput) -> dict[str, Any]:
    """The output's JSON-mode dump, its `data` shared rather than copied: the SDK dumps the structured content
    in JSON mode itself before it is sent, and `data` (a whole inventory, say) is most of the output."""
    dumped = output.model_dump(mode="json", exclude=_DATA)
    return {name: output.data if name == "data" else dumped[name] for name in _FIELDS}


class _DumpedOnce(CallToolResult):
    """A tool result whose dump for the wire is its parts as they are.

    The SDK dumps a handler's result (`model_dump` by alias, in JSON mode, without None) and then validates that
    dump against the protocol version's schema and dumps it again: the first walk would copy the whole output,
    its text and its structured content, once more per call. Its parts here are already that dump: the text,
    and the output's own JSON-mode dump. Any other dump is pydantic's.
    """

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        text = self._plain_text()
        if kwargs != _WIRE_DUMP or text is None or self.meta is not None or self.structured_content is None:
            return super().model_dump(**kwargs)
        dumped = {"content": [{"type": "text", "text": text}], "structuredContent": self.structured_content,
                  "isError": self.is_error}  # fmt: skip
        if self.result_type is not None:
            dumped["resultType"] = self.result_type
        return dumped

    def _plain_text(self) -> str | None:
        """The text of the one part, when that is all there is to it (no annotations, no `_meta`)."""
        if len(self.content) != 1:
            return None
        part = self.content[0]
        if not isinstance(part, TextContent) or type(part) is not TextContent or part.annotations or part.meta:
            return None
        return part.text


class GovernedServer(MCPServer[Runtime]):
    """An MCPServer whose tools, resources and prompts are the policy's, and whose every call, resource read
    and prompt goes through the gate. Each request is judged as its caller's agent: it is shown that agent's
    lists, and its calls pass that agent's gate.

    `list_tools`, `call_tool` and their resource and prompt counterparts are the SDK's public seams;
    overriding them keeps unknown names on our path too, so a call to `ssh` is refused and recorded rather
    than answered by the SDK. Each method reaches its own catalogue only (see server.app.resources), and a
    request the SDK rejects before these methods run is recorded too (see server.app.rejected).
    """

    def __init__(
        self,
        agents: Mapping[str, AgentView],
        roster: Roster,
        *,
        default: str | None,
        default_inventory: str,
        **kwargs: Any,
    ) -> None:
        """`default` is the agent of requests that name no caller (stdio, in process), if there is one."""
        super().__init__(**kwargs)
        self._views = agents
        self._roster = roster
        self._default = default
        self._default_inventory = default_inventory
        self.running: Runtime | None = None
        """The runtime while the server is served over HTTP (whose lifespan is entered once), for what happens
        outside any MCP request: recording a refused caller."""
        self.middleware.append(RecordRejected(via, self._gate))
        # Served in process (a `Client` given this object) the SDK hands a client's progress callback over without
        # a token; over stdio or HTTP a request that wants progress carries one (see `progress_reporter`).
        self._tokens_carry_progress = False

    def streamable_http_app(self, *args: Any, **kwargs: Any) -> Starlette:
        self.serve_on_the_wire()
        return super().streamable_http_app(*args, **kwargs)

    def serve_on_the_wire(self) -> None:
        """Served over stdio or HTTP, a request that wants progress carries a token (see `progress_reporter`)."""
        self._tokens_carry_progress = True

    async def run_stdio_async(self) -> None:
        """Refused: the SDK's own stdio loop has none of the guards `server.transports.stdio.serve_stdio` adds
        (JSON-RPC errors for lines that are not JSON-RPC, exact cancels, a recorded stop on SIGTERM)."""
        raise RuntimeError(
            "Serve planner-mcp on stdio with server.transports.stdio.serve_stdio(server), as `planner-mcp serve` does."
        )

    async def serve_streams(self, read: Any, write: Any) -> None:
        """Serve one session over a transport's pair of message streams (stdio's: see server.transports.stdio)."""
        self.serve_on_the_wire()
        await self._lowlevel_server.run(read, write, self._lowlevel_server.create_initialization_options())

    @property
    def roster(self) -> Roster:
        return self._roster

    async def record_refused_caller(self, detail: str) -> None:
        """Chain a `caller-refused` event: a caller the agents file gives to no agent was turned away (HTTP 403)."""
        runtime = self.running
        if runtime is None:
            logger.error("A refused caller cannot be recorded: the server is not running (%s)", detail)
            return
        await runtime.record_refused_caller(detail)

    def _view(self) -> AgentView | None:
        """The agent the current request's caller acts as; None when it is no agent's (HTTP refuses such a caller
        before any request of its reaches here: see server.transports.http.agents)."""
        who = identity()
        if who is None and self._default is not None:
            return self._views[self._default]
        agent = self._roster.judge(who).agent
        return None if agent is None else self._views[agent.agent_id]

    def _judged(self, runtime: Runtime) -> tuple[AgentView, Gate]:
        view = self._view()
        if view is None:
            raise MCPError(INVALID_REQUEST, "This caller acts as no agent of this server, so it can call nothing.")
        return view, runtime.gates[view.agent.agent_id]

    def _gate(self, runtime: Runtime) -> Gate | None:
        view = self._view()
        return None if view is None else runtime.gates[view.agent.agent_id]

    async def list_tools(self) -> list[MCPTool]:
        view = self._view()
        return [] if view is None else list(view.mcp_tools)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Runtime, Any] | None = None
    ) -> CallToolResult:
        runtime, request_id = _runtime(context)
        _, gate = self._judged(runtime)
        output = await gate.call(
            name,
            arguments,
            report=progress_reporter(context, tokens_carry_progress=self._tokens_carry_progress),
            client_request_id=request_id,
            via=via(),
        )
        return to_call_result(output)

    async def list_resources(self) -> list[MCPResource]:
        view = self._view()
        if view is None:
            return []
        found = [
            MCPResource(
                uri=POLICY_URI,
                name="policy",
                title="The effective policy",
                mime_type=_JSON,
                description="What this agent can reach, for auditors: tier, actions, tools, ledger.",
            )
        ]
        if "inventory" in view.routes:
            found.append(
                MCPResource(
                    uri=f"inventory://{self._default_inventory}",
                    name=self._default_inventory,
                    title="The default inventory",
                    mime_type=_JSON,
                )
            )
        return found

    async def list_resource_templates(self) -> list[MCPResourceTemplate]:
        view = self._view()
        return [
            MCPResourceTemplate(
                uri_template=r.template, name=r.scheme, title=r.title, description=r.description, mime_type=r.mime_type
            )
            for r in (view.routes.values() if view is not None else ())
        ]

    async def read_resource(
        self, uri: AnyUrl | str, context: Context[Runtime, Any] | None = None
    ) -> Iterable[ReadResourceContents]:
        runtime, request_id = _runtime(context)
        view, gate = self._judged(runtime)
        text = str(uri)
        # A URI that is no resource here (another scheme, or one this policy does not allow) still goes to the
        # gate, to be refused and recorded.
        key, arguments = route(text, view.resources)
        output = await gate.call(
            key, arguments, catalogue=view.resources, client_request_id=request_id, via=via("resources/read", text)
        )
        if output.error is not None:
            assert context is not None  # _runtime checked
            raise read_error(
                output.error,
                uri=runtime.scrubber.text(text[:_SHOWN_URI]),
                exists=key in view.resources.specs,
                protocol_version=context.request_context.protocol_version,
            )
        data = output.data or {}
        meta = {"planner-mcp/request_id": output.request_id}
        if key == POLICY_URI:
            return [ReadResourceContents(content=json.dumps(data, indent=2), mime_type=_JSON, meta=meta)]
        content = data["content"]
        mime = _MIME.get(data.get("format", ""), "text/plain")
        text_content = content if isinstance(content, str) else json.dumps(content, indent=2, ensure_ascii=False)
        return [ReadResourceContents(content=text_content, mime_type=mime, meta=meta)]

    async def list_prompts(self) -> list[MCPPrompt]:
        view = self._view()
        if view is None:
            return []
        return [
            MCPPrompt(
                name=name,
                title=prompt.title,
                description=prompt.description,
                arguments=[
                    MCPPromptArgument(name=arg, description=field.description, required=field.is_required())
                    for arg, field in prompt.args.model_fields.items()
                ],
            )
            for name, prompt in view.prompts.specs.items()
        ]

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Runtime, Any] | None = None
    ) -> GetPromptResult:
        runtime, request_id = _runtime(context)
        view, gate = self._judged(runtime)
        output = await gate.call(
            name, arguments or {}, catalogue=view.prompts, client_request_id=request_id, via=via("prompts/get", name)
        )
        if output.error is not None:
            raise prompt_error(output.error)
        assert output.data is not None  # a prompt that ran framed its text
        message = PromptMessage(role="user", content=TextContent(type="text", text=output.data["text"]))
        return GetPromptResult(description=view.prompts.specs[name].description, messages=[message])


_JSON = "application/json"
_MIME = {"markdown": "text/markdown", "json": _JSON}
_SHOWN_URI = 256


def progress_reporter(context: Context[Runtime, Any] | None, *, tokens_carry_progress: bool) -> ReportProgress | None:
    """The client's progress channel for this call, or None when it would carry nothing.

    On the wire (`tokens_carry_progress`), a request that wants progress carries a progress token, and without
    one the SDK drops every notification: none is prepared then, so no heartbeat task runs beside the LLM call
    and costs it CPU for nothing. In process, the SDK passes a client's callback without a token: the channel is
    kept.
    """
    if context is None:
        return None
    if tokens_carry_progress and progress_token_from_params(context.request_context.params) is None:
        return None
    return context.report_progress


def _runtime(context: Context[Runtime, Any] | None) -> tuple[Runtime, str | None]:
    if context is None:
        raise RuntimeError("GovernedServer needs the request context that holds the runtime")
    # Read once: each read of the SDK context's `request_context` goes through pydantic's private-attribute hook.
    request = context.request_context
    return request.lifespan_context, str(request.request_id)


def build_server(
    settings: Settings,
    *,
    auth: tuple[AuthSettings, TokenVerifier] | None = None,
    roster: Roster | None = None,
    signals: Signals = NO_SIGNALS,
) -> GovernedServer:
    """Build the server for these settings. Policy errors surface here, at start-up, not on the first call.

    `auth` is for HTTP with OAuth: the SDK then checks every request's access token with the verifier and
    publishes the protected-resource metadata clients discover the authorization server from. `signals` is what
    monitoring hears (see `server.app.telemetry`); by default, nothing.
    """
    roster = roster or load_roster(settings)
    key = ledger_key(settings)
    agents = views(roster)
    default = roster.pick(settings.agent)
    model = settings.llm.model
    for view in agents.values():
        asks_llm = any(LLM_ACTION in spec.actions for spec in view.tools.values())
        if model is not None and asks_llm and not view.agent.permits_model(model):
            logger.warning(
                "PLANNER_MCP_MODEL=%s is not allowed for tier %d by the policy of agent %s: its %s will be refused "
                "(MODEL_NOT_ALLOWED) until it is.",
                model,
                view.agent.tier,
                view.agent.agent_id,
                " and ".join(name for name, spec in view.tools.items() if LLM_ACTION in spec.actions),
            )

    @asynccontextmanager
    async def lifespan(server: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        chosen = None if default is None else default.agent_id
        async with open_runtime(
            settings, list(agents.values()), default=chosen, chain_key=key, signals=signals
        ) as runtime:
            assert isinstance(server, GovernedServer)
            first = server.running is None
            if first:
                server.running = runtime
                signals.serving(runtime)
            try:
                yield runtime
            finally:
                if first:
                    server.running = None
                    signals.serving(None)

    return GovernedServer(
        agents,
        roster,
        default=None if default is None else default.agent_id,
        default_inventory=settings.default_inventory,
        name="planner-mcp",
        title="Planner MCP",
        version=server_version(),
        instructions=_INSTRUCTIONS,
        lifespan=lifespan,
        auth=auth[0] if auth else None,
        token_verifier=auth[1] if auth else None,
    )
