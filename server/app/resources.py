"""Resources and prompts, governed and ledgered like tools: each read or prompt is a call through the gate.

- `docs://{name}` and `inventory://{name}` read the store as read_docs and read_inventory do, and exist only
  when the policy registers those tools;
- `policy://effective` shows what this agent can reach (tier, allowed and forbidden actions, threshold,
  registered tools, models, budget, ledger location), for the people who audit it;
- the `plan_request` prompt frames a planning request around the tools, when generate_plan is registered.

Each method has its own catalogue (`resource_catalogue`, `prompt_catalogue`), built by the same rule as the
lists a client is shown, and the gate looks a name up in that one only: nothing is reachable that is not
listed, and no URI or prompt name reaches a tool.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from contracts import Decision
from server.governance.spec import LOCAL_READ, Args, Deps
from server.tools import Catalogue, ToolResult, ToolSpec

__all__ = [
    "POLICY_URI",
    "PROMPT_NAME",
    "ResourceRoute",
    "policy_spec",
    "prompt_catalogue",
    "resource_catalogue",
    "route",
    "routes",
]

POLICY_URI = "policy://effective"
PROMPT_NAME = "plan_request"
_URI = re.compile(r"^(?P<scheme>[a-z]+)://(?P<rest>.*)$", re.S)


@dataclass(frozen=True)
class ResourceRoute:
    scheme: str
    template: str
    title: str
    description: str
    spec: ToolSpec
    """The capability a read runs, through the gate."""
    mime_type: str | None = None
    """The type of every resource the template matches, when they share one (MCP lists it only then): a runbook
    is Markdown, text or JSON by its entry, so `docs://` has none; an inventory is always JSON."""


def routes(tools: Mapping[str, ToolSpec]) -> dict[str, ResourceRoute]:
    """The store's resources this policy allows: a template only where its tool is registered."""
    found = {}
    if "read_docs" in tools:
        found["docs"] = ResourceRoute(
            "docs", "docs://{name}", "Runbook", "A runbook or document from the store, by name (see list_docs).",
            tools["read_docs"],
        )  # fmt: skip
    if "read_inventory" in tools:
        found["inventory"] = ResourceRoute(
            "inventory", "inventory://{name}", "Inventory", "An infrastructure inventory (JSON), by name.",
            tools["read_inventory"], "application/json",
        )  # fmt: skip
    return found


def resource_catalogue(tools: Mapping[str, ToolSpec]) -> Catalogue:
    """What resources/read reaches, by URI template: the store's resources this policy allows, and the policy."""
    specs = {r.template: r.spec for r in routes(tools).values()}
    specs[POLICY_URI] = policy_spec(list(tools))
    return Catalogue("resource", specs)


def route(uri: str, catalogue: Catalogue) -> tuple[str, dict[str, Any]]:
    """The catalogue entry a URI reads (its template), and the arguments it carries. A URI that matches no entry
    is looked up as itself, and so is refused as not a resource of this server."""
    arguments: dict[str, Any] = {}
    if uri == POLICY_URI:
        key = POLICY_URI
    elif (match := _URI.match(uri)) is not None:
        key, arguments = f"{match['scheme']}://{{name}}", {"name": match["rest"]}
    else:
        key = uri
    return (key, arguments) if key in catalogue.specs else (uri, {})


class _NoArgs(Args):
    pass


def policy_spec(tool_names: list[str]) -> ToolSpec:
    """The capability behind `policy://effective`: reads nothing but the policy the server was started with."""

    async def effective(args: _NoArgs, deps: Deps) -> ToolResult:
        agent = deps.agent
        models = agent.models_by_tier
        data: dict[str, Any] = {
            "agent_id": agent.agent_id,
            "agent_role": agent.agent_role,
            "version": agent.version,
            "tier": agent.tier,
            "allowed_actions": sorted(agent.allowed_side_effects),
            "forbidden_actions": sorted(agent.forbidden_actions),
            "confidence_threshold": agent.confidence_threshold,
            "registered_tools": tool_names,
            "models_allowed": None if models is None else sorted(agent.allowed_models() or ()),
            "daily_token_budget": agent.daily_token_budget,
            "ledger": deps.ledger.where,
        }
        return ToolResult(
            decision=Decision.EXECUTE,
            confidence=1.0,
            data=data,
            notes_for_humans=f"The effective policy of agent {agent.agent_id} (tier {agent.tier}).",
        )

    return ToolSpec(
        name="read_policy",
        title="The effective policy",
        description="What this agent can reach: tier, allowed and forbidden actions, tools, models, ledger.",
        actions=(),
        args=_NoArgs,
        capability=effective,
        hints=LOCAL_READ,
    )


class PlanPromptArgs(Args):
    description: str = Field(min_length=1, max_length=4000, description="What should be planned.")
    constraints: str | None = Field(default=None, max_length=4000, description="Limits the plan must respect.")


_PROMPT = """Plan this infrastructure change: {description}
{constraints}
Work only with planner-mcp's read-only tools. First call list_docs and read the runbooks that apply with \
read_docs, and read the inventory with read_inventory. Then call generate_plan with the description, any \
constraints, and the names of those runbooks in `docs`. Report the plan's `decision`: EXECUTE means fit to \
hand to an executor after human review; ESCALATE means a human (or a higher-tier agent) must decide, and \
`notes_for_humans` says why. Do not claim anything was changed: nothing here changes infrastructure."""


async def _frame(args: PlanPromptArgs, deps: Deps) -> ToolResult:
    constraints = f"Constraints: {args.constraints}\n" if args.constraints else ""
    text = _PROMPT.format(description=args.description, constraints=constraints)
    return ToolResult(decision=Decision.EXECUTE, confidence=1.0, data={"text": text}, notes_for_humans="")


PLAN_PROMPT = ToolSpec(
    name=PROMPT_NAME,
    title="Plan an infrastructure change",
    description="Frames a planning request: read the runbooks and inventory, then generate_plan, then report "
    "the decision.",
    actions=("generate_plan",),
    args=PlanPromptArgs,
    capability=_frame,
    hints=LOCAL_READ,
)


def prompt_catalogue(tools: Mapping[str, ToolSpec]) -> Catalogue:
    """What prompts/get reaches: the planning prompt when generate_plan is registered, else nothing."""
    return Catalogue("prompt", {PLAN_PROMPT.name: PLAN_PROMPT} if "generate_plan" in tools else {})
