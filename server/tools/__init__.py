"""The tool catalogue, and the policy filter that decides which tools exist at all."""

from contracts import AgentMetadata
from server.governance.spec import Catalogue, Deps, ToolResult, ToolSpec
from server.tools.llm_tools import ANALYZE, GENERATE_PLAN
from server.tools.log_tools import READ_LOGS
from server.tools.store_tools import LIST_DOCS, READ_DOCS, READ_INVENTORY

__all__ = ["CATALOGUE", "CATALOGUE_BY_NAME", "Catalogue", "Deps", "ToolResult", "ToolSpec", "registered_tools"]

CATALOGUE: tuple[ToolSpec, ...] = (READ_DOCS, LIST_DOCS, READ_INVENTORY, GENERATE_PLAN, ANALYZE, READ_LOGS)
"""Every tool this server can offer. Nothing that writes or executes is here, so no policy can enable it."""

CATALOGUE_BY_NAME = {spec.name: spec for spec in CATALOGUE}


def registered_tools(agent: AgentMetadata) -> dict[str, ToolSpec]:
    """The tools whose every action the policy allows and none it forbids, in catalogue order."""
    return {spec.name: spec for spec in CATALOGUE if agent.permits_all(spec.actions)}
