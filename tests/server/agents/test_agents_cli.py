"""`planner-mcp agents`, `doctor` and `config show` on an agents file, run as a user runs them: what each agent
gets, who its callers are (a token never, its digest only by its start), and what in the file would not do what
its writer meant."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import policy_file
from tests.processes import run_cli
from tests.server.agents.conftest import agent, agents_file, digest

pytestmark = pytest.mark.subprocess

IDP = "https://idp.example.com"
ISSUERS = [{"issuer": IDP, "jwks_url": f"{IDP}/jwks"}]
CI_TOKEN = "ci-token-0123456789abcdef-never-shown"
READER = agent("ci-reader", 0, ["read_docs", "read_inventory"], {"token_sha256": digest(CI_TOKEN), "name": "ci"})
PLANNER = agent(
    "sre-planner",
    1,
    ["read_docs", "read_inventory", "read_logs", "generate_plan", "llm_inference"],
    {"issuer": IDP, "group": "sre"},
    {"issuer": IDP, "subject": "release-bot"},
    daily_token_budget=200000,
    models_by_tier={"1": ["openai/gpt-4o-mini"]},
)


def _agents(ledger_path: Path, path: Path, *args: str, **env: str) -> Any:
    return run_cli(ledger_path, "agents", *args, PLANNER_MCP_AGENTS=str(path), **env)


def test_agents_shows_each_agent_its_tools_and_callers_and_never_a_token(ledger_path: Path, tmp_path: Path) -> None:
    path = agents_file(tmp_path / "agents.toml", [READER, PLANNER], ISSUERS)
    text = _agents(ledger_path, path)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"agents file {path}: 2 agents (ci-reader, sre-planner), 3 callers\n")
    blocks = {block.split()[0]: block for block in text.stdout.split("\n\n")[1:3]}
    reader = blocks["ci-reader"]
    assert "tier 0" in reader and "tools      read_docs, list_docs, read_inventory\n" in reader
    assert f"callers    token sha256:{digest(CI_TOKEN)[:12]}… (ci)" in reader
    assert "models     any" in reader and "no daily token budget" in reader
    planner = blocks["sre-planner"]
    assert "tools      read_docs, list_docs, read_inventory, generate_plan, analyze, read_logs" in planner
    assert f"callers    {IDP} group=sre\n             {IDP} subject=release-bot" in planner
    assert "models     openai/gpt-4o-mini" in planner and "budget     200000 tokens a day" in planner
    assert text.stdout.endswith("no problems found\n")

    shown = json.loads(_agents(ledger_path, path, "--json").stdout)
    assert shown["source"] == {"kind": "agents-file", "path": str(path)} and shown["every_caller_acts_as"] is None
    reader_json, planner_json = shown["agents"]
    assert reader_json == {
        "agent_id": "ci-reader",
        "role": "observer",
        "owner": "platform-team",
        "tier": 0,
        "tools": ["read_docs", "list_docs", "read_inventory"],
        "resources": ["docs://{name}", "inventory://{name}", "policy://effective"],
        "prompts": [],
        "models": None,
        "daily_token_budget": None,
        "callers": [{"kind": "token", "issuer": None, "value": f"sha256:{digest(CI_TOKEN)[:12]}", "name": "ci"}],
    }
    assert planner_json["callers"][1] == {"kind": "subject", "issuer": IDP, "value": "release-bot", "name": None}
    assert planner_json["prompts"] == ["plan_request"] and planner_json["models"] == ["openai/gpt-4o-mini"]
    assert shown["problems"] == []
    for output in (text.stdout + text.stderr, json.dumps(shown)):
        assert CI_TOKEN not in output and digest(CI_TOKEN)[:13] not in output


def test_without_an_agents_file_agents_shows_the_one_agent_every_caller_acts_as(
    ledger_path: Path, tmp_path: Path
) -> None:
    seed = run_cli(ledger_path, "agents")
    assert seed.returncode == 0, seed.stderr
    assert seed.stdout.startswith("one agent, from the seed's default (no PLANNER_MCP_POLICY): every authenticated")
    assert "llm-planner-001  tier 0" in seed.stdout and "callers    every authenticated caller" in seed.stdout
    policy = policy_file(tmp_path / "policy.toml", agent_id="docs-reader", allowed_side_effects=["read_docs"])
    shown = json.loads(run_cli(ledger_path, "agents", "--json", PLANNER_MCP_POLICY=str(policy)).stdout)
    assert shown["source"] == {"kind": "policy-file", "path": str(policy)}
    assert shown["every_caller_acts_as"] == "docs-reader"
    assert [(a["agent_id"], a["tools"], a["callers"]) for a in shown["agents"]] == [
        ("docs-reader", ["read_docs", "list_docs"], [])
    ]


def _lonely(**more: Any) -> dict[str, Any]:
    return agent("lonely", 0, ["read_docs"], **more)


PROBLEMS: list[Any] = [
    pytest.param([READER, _lonely()], {}, ("warn", ["lonely"], "no-caller", "AGENT=lonely"), id="no-caller"),
    pytest.param(
        [agent("ci", 0, ["read_docs"], {"issuer": IDP, "group": "ci"}, {"issuer": IDP, "group": "ci", "name": "x"})],
        {},
        ("warn", ["ci"], "duplicate-caller", f"callers[1] ({IDP} group=ci (x)) repeats callers[0]"),
        id="duplicate-caller",
    ),
    pytest.param(
        [READER, PLANNER, agent("dba", 1, ["read_inventory"], {"issuer": IDP, "scope": "db.read"})],
        {},
        ("warn", ["sre-planner", "dba"], "overlap", "one carrying group=sre and scope=db.read matches both equally"),
        id="overlap",
    ),
    pytest.param(
        [agent("ci-reader", 0, ["read_docs", "read_inventroy"], {"token_sha256": digest(CI_TOKEN)})],
        {},
        (
            "warn",
            ["ci-reader"],
            "unknown-action",
            "'read_inventroy', which no tool needs and the seed does not forbid, "
            "so it allows nothing; did you mean 'read_inventory'?",
        ),
        id="unknown-action allowed",
    ),
    pytest.param(
        [agent("ci-reader", 0, ["read_docs"], {"token_sha256": digest(CI_TOKEN)}, forbidden_actions=["sssh"])],
        {},
        ("warn", ["ci-reader"], "unknown-action", "forbidden_actions names 'sssh'"),
        id="unknown-action forbidden",
    ),
    pytest.param(
        [agent("ci-reader", 0, ["read_docs"], {"issuer": f"{IDP}/", "subject": "bot"})],
        {},
        (
            "error",
            ["ci-reader"],
            "unknown-issuer",
            f"no token of it can be checked, so `serve --transport http` refuses to start; did you mean '{IDP}'?",
        ),
        id="unknown-issuer",
    ),
    pytest.param(
        [{**PLANNER, "models_by_tier": {"0": ["openai/gpt-4o-mini"]}}],
        {},
        (
            "warn",
            ["sre-planner"],
            "no-model",
            "given generate_plan and analyze, but models_by_tier lists no model for its tier 1",
        ),
        id="no-model",
    ),
    pytest.param(
        [PLANNER],
        {"PLANNER_MCP_MODEL": "openai/gpt-5"},
        (
            "warn",
            ["sre-planner"],
            "model-refused",
            "PLANNER_MCP_MODEL=openai/gpt-5 is not among the models of its tier 1 (openai/gpt-4o-mini)",
        ),
        id="model-refused",
    ),
]


@pytest.mark.parametrize(("agents", "env", "expected"), PROBLEMS)
def test_agents_finds_each_kind_of_problem_alone_and_exits_1_only_on_an_error(
    ledger_path: Path, tmp_path: Path, agents: list[dict[str, Any]], env: dict[str, str], expected: tuple[Any, ...]
) -> None:
    severity, agent_ids, kind, says = expected
    path = agents_file(tmp_path / "agents.toml", agents, ISSUERS)
    proc = _agents(ledger_path, path, "--json", **env)
    assert proc.returncode == (1 if severity == "error" else 0), proc.stderr
    [problem] = json.loads(proc.stdout)["problems"]
    assert (problem["severity"], problem["agents"], problem["kind"]) == (severity, agent_ids, kind)
    assert says in problem["detail"] and problem["fix"]
    text = _agents(ledger_path, path, **env)
    assert text.returncode == proc.returncode
    assert f"{severity.upper()}{' ' if severity == 'warn' else ''}  {kind}: " in text.stdout and "fix: " in text.stdout


def test_an_issuer_set_by_planner_mcp_oauth_is_configured(ledger_path: Path, tmp_path: Path) -> None:
    other = "https://login.example.org"
    path = agents_file(tmp_path / "agents.toml", [agent("ci", 0, ["read_docs"], {"issuer": other, "subject": "bot"})])
    assert _agents(ledger_path, path).returncode == 1
    oauth = {"PLANNER_MCP_OAUTH_ISSUER": other, "PLANNER_MCP_OAUTH_JWKS_URL": f"{other}/jwks"}
    proc = _agents(ledger_path, path, "--json", **oauth)
    assert proc.returncode == 0 and json.loads(proc.stdout)["problems"] == []


def test_agents_exits_2_naming_a_file_it_cannot_use(ledger_path: Path, tmp_path: Path) -> None:
    missing = _agents(ledger_path, tmp_path / "nowhere.toml")
    assert missing.returncode == 2 and "cannot read the agents file" in missing.stderr and missing.stdout == ""
    path = agents_file(tmp_path / "agents.toml", [READER], ISSUERS)
    both = _agents(ledger_path, path, PLANNER_MCP_POLICY=str(policy_file(tmp_path / "policy.toml")))
    assert both.returncode == 2 and "both set" in both.stderr and both.stdout == ""
    path.chmod(0o666)
    shared = _agents(ledger_path, path)
    assert shared.returncode == 2 and f"{path} is refused" in shared.stderr and shared.stdout == ""


def _doctor(ledger_path: Path, **env: str) -> list[str]:
    proc = run_cli(ledger_path, "doctor", **env)
    lines = [line for line in proc.stdout.splitlines() if re.match(r"(ok|WARN|FAIL) +(agents|policy)\b", line)]
    return [f"exit {proc.returncode}", *lines]


def test_doctor_checks_the_agents_file_in_place_of_the_policy(ledger_path: Path, tmp_path: Path) -> None:
    path = agents_file(tmp_path / "agents.toml", [READER, PLANNER], ISSUERS)
    assert _doctor(ledger_path, PLANNER_MCP_AGENTS=str(path)) == [
        "exit 0",
        f"ok    agents: 2 agents (ci-reader, sre-planner), 3 callers from {path}; stdio needs PLANNER_MCP_AGENT (HTTP "
        "callers act as their own)",
    ]
    named = _doctor(ledger_path, PLANNER_MCP_AGENTS=str(path), PLANNER_MCP_AGENT="ci-reader")
    assert named[1].endswith("; stdio runs as ci-reader")
    lonely = agents_file(tmp_path / "agents.toml", [READER, _lonely()], ISSUERS)
    warned = _doctor(ledger_path, PLANNER_MCP_AGENTS=str(lonely))
    assert warned[0] == "exit 0" and warned[2].startswith("WARN  agents.no-caller: agent lonely has no callers")
    stranger = agent("ci", 0, ["read_docs"], {"issuer": "https://x", "group": "g"})
    stranger_file = agents_file(tmp_path / "agents.toml", [stranger])
    failed = _doctor(ledger_path, PLANNER_MCP_AGENTS=str(stranger_file))
    assert failed[0] == "exit 1" and failed[2].startswith("FAIL  agents.unknown-issuer: agent ci: 1 caller of issuer")


def test_doctor_fails_an_agents_file_it_cannot_use_and_names_why(ledger_path: Path, tmp_path: Path) -> None:
    missing = _doctor(ledger_path, PLANNER_MCP_AGENTS=str(tmp_path / "nowhere.toml"))
    assert missing[0] == "exit 1" and missing[1].startswith("FAIL  agents: cannot read the agents file")
    path = agents_file(tmp_path / "agents.toml", [READER], ISSUERS)
    policy = policy_file(tmp_path / "policy.toml")
    both = _doctor(ledger_path, PLANNER_MCP_AGENTS=str(path), PLANNER_MCP_POLICY=str(policy))
    assert both[0] == "exit 1" and both[1].startswith("FAIL  agents: PLANNER_MCP_POLICY and PLANNER_MCP_AGENTS are")
    unnamed = _doctor(ledger_path, PLANNER_MCP_AGENTS=str(path), PLANNER_MCP_AGENT="planner")
    assert unnamed[1].startswith("FAIL  agents: PLANNER_MCP_AGENT='planner' is no agent of")
    invalid = agents_file(tmp_path / "agents.toml", [agent("ci", 0, ["read_docs"], {"token_sha256": CI_TOKEN})])
    refused = run_cli(ledger_path, "doctor", PLANNER_MCP_AGENTS=str(invalid))
    assert refused.returncode == 1 and "FAIL  agents: the agents file" in refused.stdout
    assert "Traceback" not in refused.stderr and CI_TOKEN not in refused.stdout + refused.stderr


def test_config_show_says_where_the_agents_file_and_the_agent_came_from(ledger_path: Path, tmp_path: Path) -> None:
    path = agents_file(tmp_path / "agents.toml", [READER, PLANNER], ISSUERS)
    config = tmp_path / "planner-mcp.toml"
    config.write_text('PLANNER_MCP_AGENT = "ci-reader"\n', encoding="utf-8")
    env = {"PLANNER_MCP_AGENTS": str(path), "PLANNER_MCP_CONFIG": str(config)}
    text = run_cli(ledger_path, "config", "show", **env)
    assert text.returncode == 0, text.stderr
    lines = {line.lstrip("# ").split(" ")[0]: line for line in text.stdout.splitlines()[1:]}
    assert lines["PLANNER_MCP_AGENTS"].startswith(f'PLANNER_MCP_AGENTS = "{path}"')
    assert "# env:" in lines["PLANNER_MCP_AGENTS"]
    assert lines["PLANNER_MCP_AGENT"].startswith('PLANNER_MCP_AGENT = "ci-reader"')
    assert f"# file {config}:" in lines["PLANNER_MCP_AGENT"]
    shown = json.loads(run_cli(ledger_path, "config", "show", "--json", **env).stdout)
    by_name = {s["name"]: (s["value"], s["source"]) for s in shown["settings"]}
    assert by_name["PLANNER_MCP_AGENTS"] == (str(path), "env")
    assert by_name["PLANNER_MCP_AGENT"] == ("ci-reader", f"file {config}")
    unset = json.loads(run_cli(ledger_path, "config", "show", "--json").stdout)
    assert {s["name"]: (s["value"], s["source"]) for s in unset["settings"]}["PLANNER_MCP_AGENTS"] == (None, "default")


def test_doctor_says_whether_http_could_serve_the_agents_file(ledger_path: Path, tmp_path: Path) -> None:
    path = agents_file(tmp_path / "agents.toml", [READER, PLANNER], ISSUERS)
    served = run_cli(ledger_path, "doctor", PLANNER_MCP_AGENTS=str(path)).stdout
    assert (
        f"ok    http: `serve --transport http` would serve http://127.0.0.1:8765/mcp to the file's callers; JWTs "
        f"from {IDP}\n" in served
    )
    assert "no HTTP callers configured" not in served
    beside = run_cli(ledger_path, "doctor", PLANNER_MCP_AGENTS=str(path), PLANNER_MCP_HTTP_TOKEN="a-static-token-0123")
    assert beside.returncode == 1
    assert "FAIL  http: `serve --transport http` would not start: with an agents file, a static token" in beside.stdout
    assert "a-static-token-0123" not in beside.stdout + beside.stderr
    nobody = agents_file(tmp_path / "agents.toml", [_lonely()])
    stdio = run_cli(ledger_path, "doctor", PLANNER_MCP_AGENTS=str(nobody))
    assert stdio.returncode == 0 and "ok    http: no agent of the file has a caller: stdio only" in stdio.stdout
