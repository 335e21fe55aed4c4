"""What one agent's callers are shown and can reach: its tools, resources and prompt, built once per agent."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from mcp.types import Tool as MCPTool

from contracts import AgentMetadata
from server.app.resources import ResourceRoute, prompt_catalogue, resource_catalogue, routes
from server.governance.roster import Roster
from server.governance.spec import Catalogue, ToolSpec
from server.tools import registered_tools

__all__ = ["AgentView", "views"]


@dataclass(frozen=True)
class AgentView:
    """One agent's capabilities, each list built by the rule the gate checks calls by: what is not listed here is
    not reachable by this agent's callers."""

    agent: AgentMetadata
    tools: Mapping[str, ToolSpec]
    mcp_tools: list[MCPTool] = field(init=False)
    routes: dict[str, ResourceRoute] = field(init=False)
    resources: Catalogue = field(init=False)
    prompts: Catalogue = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the derived lists are set once, here
        set_(self, "mcp_tools", [spec.mcp_tool for spec in self.tools.values()])
        set_(self, "routes", routes(self.tools))
        set_(self, "resources", resource_catalogue(self.tools))
        set_(self, "prompts", prompt_catalogue(self.tools))

    @classmethod
    def of(cls, agent: AgentMetadata) -> "AgentView":
        """The agent's view with the tools its policy registers."""
        return cls(agent, registered_tools(agent))


def views(roster: Roster) -> dict[str, AgentView]:
    """Every agent's view, by agent id."""
    return {agent_id: AgentView.of(agent) for agent_id, agent in roster.agents.items()}
