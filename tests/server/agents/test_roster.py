"""The agents file is refused whole when it cannot mean one thing, and a caller acts as the agent of its most
specific matching entry: a token, then a subject, then a client id, then a group or a scope; a tie is nobody's."""

from pathlib import Path
from typing import Any

import pytest

from server.call.callers import Identity
from server.config.settings import Settings
from server.governance.roster import Roster, RosterError, load_agents_file, load_roster
from tests.conftest import policy_file
from tests.server.agents.conftest import agent, agents_file, digest

IDP = "https://idp.example.com"
OTHER_IDP = "https://login.example.org"
TOKEN = "ci-token-0123456789abcdef-do-not-print"


def _roster(tmp_path: Path, *agents: dict[str, Any], **settings: Any) -> Roster:
    path = agents_file(tmp_path / "agents.toml", agents, issuers=[{"issuer": IDP, "jwks_url": f"{IDP}/jwks"}])
    return load_roster(Settings(ledger_path=tmp_path / "ledger.db", agents_path=path, **settings))


def _refused(tmp_path: Path, *agents: dict[str, Any]) -> str:
    with pytest.raises(RosterError) as error:
        _roster(tmp_path, *agents)
    return str(error.value)


# --- what the file may not say ------------------------------------------------------------------------------------


def test_two_agents_with_one_id_are_refused(tmp_path: Path) -> None:
    said = _refused(tmp_path, agent("ci", 0, ["read_docs"]), agent("ci", 1, ["read_inventory"]))
    assert "agent_id 'ci' is given to two agents" in said and str(tmp_path / "agents.toml") in said
    assert "Value error" not in said  # pydantic's prefix: the sentence is the file's reader's


def test_one_caller_under_two_agents_is_refused_naming_both(tmp_path: Path) -> None:
    bot = {"issuer": IDP, "subject": "release-bot"}
    said = _refused(tmp_path, agent("reader", 0, ["read_docs"], bot), agent("planner", 1, ["read_docs"], bot))
    assert "matches two agents, reader and planner: give it to one" in said and "subject=release-bot" in said


def test_one_token_under_two_agents_is_refused_without_showing_its_digest(tmp_path: Path) -> None:
    token = {"token_sha256": digest(TOKEN)}
    said = _refused(tmp_path, agent("reader", 0, ["read_docs"], token), agent("planner", 1, ["read_docs"], token))
    assert "matches two agents, reader and planner" in said
    assert digest(TOKEN)[:12] in said and digest(TOKEN)[:13] not in said


@pytest.mark.parametrize("pasted", [TOKEN, digest(TOKEN)[:63], digest(TOKEN) + "0", "Z" * 64])
def test_a_token_sha256_that_is_not_64_hex_digits_is_refused_and_not_echoed(tmp_path: Path, pasted: str) -> None:
    said = _refused(tmp_path, agent("reader", 0, ["read_docs"], {"token_sha256": pasted}))
    assert "agents[0] (reader).callers[0]" in said and "64 hexadecimal digits" in said
    assert pasted not in said


def test_a_digest_in_capitals_is_the_same_digest(tmp_path: Path) -> None:
    roster = _roster(tmp_path, agent("reader", 0, ["read_docs"], {"token_sha256": digest(TOKEN).upper()}))
    assert roster.has_token(digest(TOKEN))


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"issuer": IDP, "subject": "bot", "group": "sre"}, "needs exactly one of subject, client_id, group, scope"),
        ({"issuer": IDP}, "needs exactly one of subject, client_id, group, scope"),
        ({"subject": "bot"}, "a caller needs token_sha256, or issuer with subject"),
        ({"token_sha256": digest(TOKEN), "issuer": IDP}, "a token_sha256 alone, or an issuer with one claim"),
        ({"issuer": IDP, "subjet": "bot"}, "subjet"),
    ],
)
def test_a_caller_entry_that_does_not_say_one_way_to_match_is_refused(
    tmp_path: Path, entry: dict[str, str], says: str
) -> None:
    said = _refused(tmp_path, agent("ci", 0, ["read_docs"]), agent("planner", 1, ["read_docs"], entry))
    assert "agents[1] (planner).callers[0]" in said and says in said


def test_an_agents_file_others_could_change_is_refused(tmp_path: Path) -> None:
    path = agents_file(tmp_path / "agents.toml", [agent("ci", 0, ["read_docs"], {"token_sha256": digest(TOKEN)})])
    settings = Settings(ledger_path=tmp_path / "ledger.db", agents_path=path)
    assert list(load_roster(settings).agents) == ["ci"]
    path.chmod(0o666)
    with pytest.raises(RosterError, match=rf"PLANNER_MCP_AGENTS: {path} is refused.*`chmod go-w {path}`"):
        load_roster(settings)


def test_an_agents_file_that_is_not_there_or_not_toml_is_named(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match=r"cannot read the agents file .*nowhere.toml \(PLANNER_MCP_AGENTS\)"):
        load_agents_file(tmp_path / "nowhere.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text(f'[[agents]]\ntoken_sha256 = "{TOKEN}', encoding="utf-8")
    broken.chmod(0o600)
    with pytest.raises(RosterError, match="is not valid TOML") as error:
        load_agents_file(broken)
    assert TOKEN not in str(error.value)


def test_a_policy_file_and_an_agents_file_together_are_refused(tmp_path: Path) -> None:
    policy = policy_file(tmp_path / "policy.toml")
    with pytest.raises(RosterError, match="PLANNER_MCP_POLICY and PLANNER_MCP_AGENTS are both set"):
        _roster(tmp_path, agent("ci", 0, ["read_docs"]), policy_path=policy)


def test_planner_mcp_agent_must_name_an_agent_of_the_file(tmp_path: Path) -> None:
    agents = (agent("ci", 0, ["read_docs"]), agent("planner", 1, ["read_docs"]))
    assert _roster(tmp_path, *agents, agent="planner").pick("planner") is not None
    with pytest.raises(RosterError, match=r"PLANNER_MCP_AGENT='plannr' is no agent of .* \(it has ci, planner\)"):
        _roster(tmp_path, *agents, agent="plannr")


def test_an_agent_number_out_of_range_names_the_agent_and_the_range(tmp_path: Path) -> None:
    said = _refused(tmp_path, agent("ci", 0, ["read_docs"]), agent("planner", 7, ["read_docs"]))
    assert "agents[1] (planner).tier" in said and "4" in said


# --- who acts as which agent --------------------------------------------------------------------------------------


@pytest.fixture
def layered_roster(tmp_path: Path) -> Roster:
    """Four agents, each taking the same caller by a more specific entry than the last."""
    return _roster(
        tmp_path,
        agent("by-group", 0, ["read_docs"], {"issuer": IDP, "group": "sre"}),
        agent("by-client", 0, ["read_docs"], {"issuer": IDP, "client_id": "planner-app"}),
        agent("by-subject", 0, ["read_docs"], {"issuer": IDP, "subject": "alice"}),
        agent("by-token", 0, ["read_docs"], {"token_sha256": digest(TOKEN)}),
    )


def _acts_as(roster: Roster, who: Identity | None) -> str | None:
    judged = roster.judge(who)
    return judged.agent.agent_id if judged.agent else None


def test_the_most_specific_matching_entry_decides(layered_roster: Roster) -> None:
    alice = Identity(client_id="planner-app", subject="alice", issuer=IDP, groups=("sre",))
    assert _acts_as(layered_roster, alice) == "by-subject"
    assert _acts_as(layered_roster, Identity(client_id="planner-app", subject="bob", issuer=IDP, groups=("sre",))) == (
        "by-client"
    )
    assert _acts_as(layered_roster, Identity(client_id="cli", subject="bob", issuer=IDP, groups=("sre",))) == (
        "by-group"
    )
    assert _acts_as(layered_roster, Identity(token_digest=digest(TOKEN))) == "by-token"
    judged = layered_roster.judge(alice)
    assert judged.rule is not None and judged.rule.kind == "subject"


def test_a_token_caller_is_its_tokens_agent_and_no_claim_entry_matches_it(layered_roster: Roster) -> None:
    # A caller with a static token has no claims: only its digest can match.
    assert _acts_as(layered_roster, Identity(token_digest=digest(TOKEN), subject="alice", issuer=IDP)) == "by-token"
    judged = layered_roster.judge(Identity(token_digest=digest("another token"), subject="alice", issuer=IDP))
    assert judged.agent is None and "matches no agent" in judged.problem


def test_a_digest_read_back_from_a_row_matches_by_its_recorded_start_and_no_shorter(layered_roster: Roster) -> None:
    assert _acts_as(layered_roster, Identity(token_digest=digest(TOKEN)[:16])) == "by-token"
    assert _acts_as(layered_roster, Identity(token_digest=digest(TOKEN)[:15])) is None


def test_an_entry_matches_only_callers_of_its_own_issuer(layered_roster: Roster) -> None:
    judged = layered_roster.judge(Identity(client_id="planner-app", subject="alice", issuer=OTHER_IDP, groups=("sre",)))
    assert judged.agent is None and "matches no agent" in judged.problem


@pytest.mark.parametrize(
    "caller",
    [
        Identity(subject="carol", issuer=IDP, groups=("sre", "dba")),
        Identity(subject="carol", issuer=IDP, groups=("sre",), scopes=("db.read",)),
    ],
    ids=["two groups", "a group and a scope"],
)
def test_a_caller_whose_best_entries_belong_to_two_agents_is_nobodys(tmp_path: Path, caller: Identity) -> None:
    roster = _roster(
        tmp_path,
        agent("sre", 0, ["read_docs"], {"issuer": IDP, "group": "sre"}),
        agent("dba", 1, ["read_inventory"], {"issuer": IDP, "group": "dba"}, {"issuer": IDP, "scope": "db.read"}),
    )
    judged = roster.judge(caller)
    assert judged.agent is None and judged.rule is None
    assert "matches agents dba and sre equally" in judged.problem and "group=sre" in judged.problem
    # One level more specific settles it.
    assert _acts_as(roster, Identity(subject="carol", issuer=IDP, groups=("sre",))) == "sre"


def test_an_unidentified_caller_of_an_agents_file_is_nobodys(layered_roster: Roster) -> None:
    judged = layered_roster.judge(None)
    assert judged.agent is None and judged.problem == "the caller is not identified"


def test_a_policy_files_roster_judges_every_caller_as_its_one_agent(tmp_path: Path) -> None:
    policy = policy_file(tmp_path / "policy.toml", agent_id="the-one")
    roster = load_roster(Settings(ledger_path=tmp_path / "ledger.db", policy_path=policy))
    assert not roster.from_agents_file and roster.callers("the-one") == ()
    for who in (None, Identity(subject="anyone", issuer=IDP), Identity(token_digest=digest("whatever"))):
        judged = roster.judge(who)
        assert judged.agent is not None and judged.agent.agent_id == "the-one" and judged.rule is None
    assert roster.pick(None) is roster.agents["the-one"]


def test_stdio_picks_the_named_agent_or_the_only_one(tmp_path: Path) -> None:
    one = _roster(tmp_path, agent("ci", 0, ["read_docs"]))
    assert one.pick(None) is one.agents["ci"]
    two = _roster(tmp_path, agent("ci", 0, ["read_docs"]), agent("planner", 1, ["read_docs"]))
    assert two.pick(None) is None and two.pick("planner") is two.agents["planner"]
