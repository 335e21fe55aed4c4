"""What a tool is to the gate: the actions it needs, its argument model, its hints and its capability."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mcp.types import Tool as MCPTool
from mcp.types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from contracts import AgentMetadata, Decision, Plan, SideEffect, SourceRef
from ledger import Ledger, Scrubber
from server.call.progress import Progress
from server.governance.limits import TokenBudget
from server.governance.schemas import Returns, input_schema, output_schema
from server.llm import LLMClient, LLMReply
from server.stores import LocalReads, Store

__all__ = [
    "LLM_CALL",
    "LOCAL_READ",
    "Args",
    "Catalogue",
    "Deps",
    "Hints",
    "LLMCall",
    "LocalCapability",
    "Returns",
    "ToolResult",
    "ToolSpec",
]


_SHOWN_UNKNOWN = 3
_SHOWN_CHARS = 40


def _excerpt(key: str) -> str:
    return repr(key[:_SHOWN_CHARS]) + ("..." if len(key) > _SHOWN_CHARS else "")


def _nullable_optionals(schema: dict[str, Any]) -> None:
    """Every optional argument's schema also admits null, as `Args` accepts it: a framework in OpenAI's strict
    mode makes every argument required, and null is then how its model leaves one out."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in required or {"type": "null"} in prop.get("anyOf", ()):
            continue
        meta = {key: prop.pop(key) for key in ("description", "default", "title") if key in prop}
        schema["properties"][name] = {"anyOf": [prop, {"type": "null"}], **meta}


def _given(data: dict[str, Any], fields: Mapping[str, FieldInfo]) -> dict[str, Any]:
    """The arguments without those an optional argument's null leaves out: null is "not given" on every tool."""
    if None not in data.values():
        return data
    return {key: value for key, value in data.items() if value is not None or fields[key].is_required()}


class Args(BaseModel):
    """Base of every tool's arguments: unknown fields are refused, so a typo cannot pass silently, and an optional
    argument given as null is taken as not given (its schema says null is accepted), on every tool alike."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_nullable_optionals)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_arguments(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # Refused here, not by `extra="forbid"` (kept as a second line and for the schema), whose errors name every
        # unknown key in full: keys are the caller's text, and a refusal must not echo 64 KiB of them.
        if unknown := [key for key in data if key not in cls.model_fields]:
            shown = ", ".join(_excerpt(str(key)) for key in unknown[:_SHOWN_UNKNOWN])
            more = f" and {len(unknown) - _SHOWN_UNKNOWN} more" if len(unknown) > _SHOWN_UNKNOWN else ""
            takes = ", ".join(cls.model_fields) or "none"
            plural = "s" if len(unknown) > 1 else ""
            problem = f"unknown argument{plural} {shown}{more} (this tool's arguments: {takes})"
            raise PydanticCustomError("unknown_argument", "{problem}", {"problem": problem})
        return _given(data, cls.model_fields)


@dataclass(frozen=True)
class Deps:
    """What a capability may use. The gate builds it, with the call's own progress; capabilities never reach
    around it."""

    agent: AgentMetadata
    store: Store
    llm: LLMClient
    scrubber: Scrubber
    ledger: Ledger
    default_inventory: str
    progress: Progress = field(default_factory=Progress)
    budget: TokenBudget | None = None
    """The call's hold on a daily token budget, when its agent has one and the call asks an LLM."""


@dataclass(frozen=True)
class LLMCall:
    """What the provenance of an LLM answer says about the request that produced it."""

    reply: LLMReply
    endpoint_host: str
    prompt_digest: str


@dataclass
class ToolResult:
    """What a capability produced; the gate wraps it in the AgentOutput envelope."""

    decision: Decision
    confidence: float
    data: dict[str, Any] | None = None
    plan: Plan | None = None
    llm: LLMCall | None = None
    llm_response: str | None = None
    assumptions: list[str] = field(default_factory=list)
    side_effects: list[SideEffect] = field(default_factory=list)
    sources: list[SourceRef] = field(default_factory=list)
    notes_for_humans: str = ""


@dataclass(frozen=True)
class Hints:
    """The four annotation hints, always all set: hosts act on each of them."""

    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool


LOCAL_READ = Hints(read_only=True, destructive=False, idempotent=True, open_world=False)
"""Reads from our own store: same answer for the same store, nothing outside touched."""

LLM_CALL = Hints(read_only=True, destructive=False, idempotent=False, open_world=True)
"""Asks an external model: changes no infrastructure, but the answer differs from call to call."""

Capability = Callable[[Any, Deps], Awaitable[ToolResult]]
LocalCapability = Callable[[Any, Deps, LocalReads], ToolResult]
"""The same capability, blocking, on a store whose reads are local (`Store.local_reads`): the gate runs it, with
the intent before it and the outcome after it, in one trip to a worker thread (shared with the local reads that
arrive with it: see `server.governance.trips`)."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    actions: tuple[str, ...]
    args: type[Args]
    capability: Capability
    hints: Hints
    local: LocalCapability | None = None
    returns: Returns = field(default_factory=Returns)
    """What the tool puts in `data`, `plan` and `llm_response`: its output schema types them."""

    @cached_property
    def mcp_tool(self) -> MCPTool:
        """The tool as clients see it in tools/list."""
        return MCPTool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=input_schema(self.args),
            output_schema=output_schema(self.returns),
            annotations=ToolAnnotations(
                title=self.title,
                read_only_hint=self.hints.read_only,
                destructive_hint=self.hints.destructive,
                idempotent_hint=self.hints.idempotent,
                open_world_hint=self.hints.open_world,
            ),
            _meta={"planner-mcp/actions": list(self.actions)},
        )


@dataclass(frozen=True)
class Catalogue:
    """The capabilities one MCP method reaches (`tools/call` the tools, `prompts/get` the prompts, `resources/read`
    the resources), by the names that method takes. The gate looks a call's name up in its own method's catalogue
    and nowhere else, so no method reaches a capability of another kind."""

    kind: str
    """What its members are called ("tool", "prompt", "resource"): the word a refusal uses."""
    specs: Mapping[str, ToolSpec]
