"""The agents a server runs as, and which of them each caller acts as (see contracts.agents)."""

from server.governance.roster.file import RosterError, load_agents_file, load_roster
from server.governance.roster.http import http_issuers, http_problem
from server.governance.roster.roster import Judgement, Roster

__all__ = ["Judgement", "Roster", "RosterError", "http_issuers", "http_problem", "load_agents_file", "load_roster"]
