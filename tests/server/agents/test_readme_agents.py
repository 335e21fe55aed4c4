"""The README's two-agent file is a working file, and each of its callers sees what the README's table says."""

import re
from pathlib import Path

import pytest

from server.config.settings import Settings
from server.governance.roster import load_roster
from tests.conftest import connect
from tests.processes import run_cli

README = Path(__file__).parents[3] / "README.md"

_READS = ["read_docs", "list_docs", "read_inventory"]
SEEN = {
    "ci-reader": (_READS, []),
    "sre-planner": ([*_READS, "generate_plan", "analyze", "read_logs"], ["plan_request"]),
}
"""The README's table: the tools and the prompts each caller is shown."""


def _example(tmp_path: Path) -> Path:
    text = README.read_text(encoding="utf-8")
    [block] = re.findall(r"```toml\n(# agents\.toml.*?)```", text, re.S)
    path = tmp_path / "agents.toml"
    path.write_text(block, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_the_readme_agents_file_loads_and_its_callers_are_whom_the_readme_says(tmp_path: Path) -> None:
    roster = load_roster(Settings(ledger_path=tmp_path / "ledger.db", agents_path=_example(tmp_path)))
    assert list(roster.agents) == list(SEEN)
    assert [rule.kind for rule in roster.callers("ci-reader")] == ["token"]
    assert [rule.kind for rule in roster.callers("sre-planner")] == ["group", "subject"]


@pytest.mark.anyio
@pytest.mark.parametrize("agent_id", list(SEEN))
async def test_each_agent_of_the_readme_file_is_shown_what_the_readme_table_says(tmp_path: Path, agent_id: str) -> None:
    settings = Settings(ledger_path=tmp_path / "ledger.db", agents_path=_example(tmp_path), agent=agent_id)
    tools, prompts = SEEN[agent_id]
    async with connect(settings) as client:
        assert [t.name for t in (await client.list_tools()).tools] == tools
        assert [p.name for p in (await client.list_prompts()).prompts] == prompts
        resources = [str(r.uri) for r in (await client.list_resources()).resources]
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
    assert resources == ["policy://effective", "inventory://proxmox"]
    assert templates == ["docs://{name}", "inventory://{name}"]
    row = next(line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `tools/list`"))
    column = row.split("|")[1 + list(SEEN).index(agent_id) + 1]
    assert re.findall(r"`(\w+)`", column) == tools


@pytest.mark.subprocess
def test_planner_mcp_agents_prints_what_the_readme_shows_for_its_file(tmp_path: Path) -> None:
    path = _example(tmp_path)
    text = README.read_text(encoding="utf-8")
    [shown] = re.findall(r"```\n(agents file /etc/planner-mcp/agents\.toml.*?)```", text, re.S)
    printed = run_cli(tmp_path / "ledger.db", "agents", PLANNER_MCP_AGENTS=str(path))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == shown.replace("/etc/planner-mcp/agents.toml", str(path))
