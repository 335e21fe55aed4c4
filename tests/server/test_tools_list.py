from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from contracts import SEED_FORBIDDEN_ACTIONS
from server import Settings
from server.governance.policy import PolicyError, load_policy
from tests.conftest import DEFAULT_TOOLS, connect, policy_file

pytestmark = pytest.mark.anyio


def _policy(tmp_path: Path, allowed: list[str], forbidden: list[str] | None = None) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f"""
agent_id = "strict-reader"
agent_role = "observer"
owner = "platform-team"
version = "1.0.0"
tier = 0
allowed_side_effects = {allowed!r}
forbidden_actions = {list(forbidden if forbidden is not None else SEED_FORBIDDEN_ACTIONS)!r}
confidence_threshold = 0.8
""",
        encoding="utf-8",
    )
    return path


async def test_the_default_policy_registers_the_five_planner_tools(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        with anyio.fail_after(5):
            tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == DEFAULT_TOOLS


async def test_every_tool_has_a_title_a_description_an_output_schema_and_all_four_hints(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for tool in tools.values():
        assert tool.title and tool.description and len(tool.description) > 80
        assert tool.output_schema is not None and "decision" in tool.output_schema["properties"]
        hints = tool.annotations
        assert hints is not None
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint)
        assert hints.read_only_hint is True and hints.destructive_hint is False
    for name in ("read_docs", "list_docs", "read_inventory"):
        assert (tools[name].annotations.idempotent_hint, tools[name].annotations.open_world_hint) == (True, False)  # type: ignore[union-attr]
    for name in ("generate_plan", "analyze"):
        assert (tools[name].annotations.idempotent_hint, tools[name].annotations.open_world_hint) == (False, True)  # type: ignore[union-attr]


async def test_a_policy_without_llm_inference_registers_no_llm_tool(
    make_settings: Callable[..., Settings], tmp_path: Path, mode: str
) -> None:
    policy = _policy(tmp_path, ["read_docs", "read_inventory", "generate_plan"])
    async with connect(make_settings(policy_path=policy), mode) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["read_docs", "list_docs", "read_inventory"]


async def test_forbidden_names_never_appear_even_when_a_policy_allows_them(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # A careless policy allows everything and forbids nothing: still no tool can write or execute.
    policy = _policy(tmp_path, ["read_docs", *SEED_FORBIDDEN_ACTIONS], forbidden=[])
    async with connect(make_settings(policy_path=policy)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"read_docs", "list_docs"}
    assert names.isdisjoint(SEED_FORBIDDEN_ACTIONS)


async def test_a_forbidden_action_wins_over_an_allowed_one(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    policy = _policy(tmp_path, ["read_docs", "read_inventory"], forbidden=["read_inventory"])
    async with connect(make_settings(policy_path=policy)) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    assert names == ["read_docs", "list_docs"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tier = [", "not valid TOML"),
        ('agent_id = "x"', "agent_role: Field required"),
        ('agent_id = "x"\nagent_role = "o"\nowner = "o"\nversion = "1"\ntier = 9', "tier"),
        ('agent_id = "x"\nagent_role = "o"\nowner = "o"\nversion = "1"\ntier = 0\nallowed = []', "allowed"),
    ],
)
def test_a_bad_policy_file_is_refused_with_a_message_that_names_the_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


@pytest.mark.parametrize(
    ("field", "value"),
    [("tier", True), ("tier", 1.0), ("tier", "1"), ("confidence_threshold", True), ("daily_token_budget", True)],
)
def test_a_policy_number_of_another_type_is_refused_naming_the_field_and_the_file(
    tmp_path: Path, field: str, value: object
) -> None:
    path = policy_file(tmp_path / "policy.toml", **{field: value})  # `tier = true`, `tier = 1.0`, `tier = "1"`…
    with pytest.raises(PolicyError) as refused:
        load_policy(path)
    assert str(path) in str(refused.value) and f"{field}: Input should be a valid" in str(refused.value)


def test_a_missing_policy_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="PLANNER_MCP_POLICY"):
        load_policy(tmp_path / "absent.toml")
