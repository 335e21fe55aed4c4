"""The policy's limits on LLM use: models per tier and a daily token budget, enforced before any request."""

from collections.abc import Callable
from pathlib import Path

import pytest

from server import Settings, build_server
from server.governance.policy import PolicyError, load_policy
from tests.conftest import call, call_once, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.server.llm.conftest import plan_reply

pytestmark = pytest.mark.anyio


async def test_a_model_the_policy_does_not_list_for_the_tier_is_refused_before_any_request(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI, ledger_path: Path
) -> None:
    policy = write_policy(models_by_tier={"0": ["small-model"], "2": ["test-model"]})
    async with connect(settings_with(policy_path=policy)) as client:
        refused, output = await call(client, "generate_plan", {"description": "Add a VM"})
        _, analysis = await call(client, "analyze", {"description": "Why?"})
        read, _ = await call(client, "list_docs")
    assert refused.is_error and output["error"]["type"] == "MODEL_NOT_ALLOWED"
    assert "'test-model' is not allowed for tier 0" in output["error"]["message"]
    assert "allowed: small-model" in output["error"]["message"]
    assert "PLANNER_MCP_MODEL" in output["error"]["recommended_action"]
    assert analysis["error"]["type"] == "MODEL_NOT_ALLOWED"
    assert not read.is_error  # the read tools are not LLM calls
    assert llm.chat_requests == []
    recorded = rows(ledger_path)
    assert [(r["action"], r["error_type"], r["refused"]) for r in recorded[:2]] == [
        ("generate_plan", "MODEL_NOT_ALLOWED", 1),
        ("analyze", "MODEL_NOT_ALLOWED", 1),
    ]
    assert rows(ledger_path, "call_intents")[0]["action"] == "list_docs"  # refusals record no intent


async def test_a_tier_the_policy_does_not_list_may_use_no_model(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI
) -> None:
    policy = write_policy(models_by_tier={"3": ["test-model"]})
    _, output = await call_once(settings_with(policy_path=policy), "generate_plan", {"description": "Add a VM"})
    assert output["error"]["type"] == "MODEL_NOT_ALLOWED" and "allowed: none" in output["error"]["message"]
    assert llm.chat_requests == []


async def test_a_listed_model_is_used(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text(plan_reply()))
    policy = write_policy(models_by_tier={"0": ["test-model", "other"]})
    result, output = await call_once(settings_with(policy_path=policy), "generate_plan", {"description": "Add a VM"})
    assert not result.is_error and output["decision"] == "EXECUTE"


async def test_the_daily_budget_refuses_calls_once_the_ledger_shows_it_spent(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.default = Reply.text(plan_reply())  # each reply reports 18 tokens
    settings = settings_with(policy_path=write_policy(daily_token_budget=30))
    async with connect(settings) as client:
        first, _ = await call(client, "generate_plan", {"description": "Add a VM"})
        second, _ = await call(client, "analyze", {"description": "Why?"})
        third, spent = await call(client, "generate_plan", {"description": "Add another VM"})
        read, _ = await call(client, "read_inventory")
    assert not first.is_error and not second.is_error and not read.is_error
    assert third.is_error and spent["error"]["type"] == "TOKEN_BUDGET_EXHAUSTED"
    assert "has spent or reserved 36 of its 30 LLM tokens" in spent["error"]["message"]
    assert "daily_token_budget" in spent["error"]["recommended_action"]
    assert len(llm.chat_requests) == 2
    # A new server process on the same ledger knows what was spent: the budget lives in the ledger, not memory.
    _, again = await call_once(settings, "analyze", {"description": "Why?"})
    assert again["error"]["type"] == "TOKEN_BUDGET_EXHAUSTED" and len(llm.chat_requests) == 2
    assert [r["error_type"] for r in rows(ledger_path)][-1] == "TOKEN_BUDGET_EXHAUSTED"
    # Refused before the intent (the check runs in the intent's own trip to the ledger): no intent, nothing read.
    refused = [r for r in rows(ledger_path) if r["error_type"] == "TOKEN_BUDGET_EXHAUSTED"]
    assert [(r["refused"], r["intent_id"]) for r in refused] == [(1, None), (1, None)]
    assert len(rows(ledger_path, "call_intents")) == 3


async def test_the_budget_is_per_agent(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI, tmp_path: Path
) -> None:
    llm.default = Reply.text(plan_reply())
    async with connect(settings_with(policy_path=write_policy(daily_token_budget=10))) as client:
        await call(client, "generate_plan", {"description": "Add a VM"})
        _, spent = await call(client, "generate_plan", {"description": "Add a VM"})
    assert spent["error"]["type"] == "TOKEN_BUDGET_EXHAUSTED"
    other = write_policy(agent_id="llm-planner-002", daily_token_budget=10)
    result, _ = await call_once(settings_with(policy_path=other), "generate_plan", {"description": "Add a VM"})
    assert not result.is_error


@pytest.mark.parametrize(
    ("models_by_tier", "says"),
    [({"7": ["m"]}, "tier '7' is not one of 0-4"), ({"0": "m"}, "must be a list of model names")],
)
def test_a_policy_with_a_malformed_model_list_is_refused_at_start_up(
    write_policy: Callable[..., Path], models_by_tier: dict[str, object], says: str
) -> None:
    with pytest.raises(PolicyError, match=says):
        load_policy(write_policy(models_by_tier=models_by_tier))


def test_a_budget_must_be_positive(write_policy: Callable[..., Path]) -> None:
    with pytest.raises(PolicyError, match="daily_token_budget"):
        load_policy(write_policy(daily_token_budget=0))


def test_a_configured_model_the_policy_refuses_is_warned_about_at_start_up(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    build_server(settings_with(policy_path=write_policy(models_by_tier={"0": ["small-model"]})))
    assert "PLANNER_MCP_MODEL=test-model is not allowed for tier 0" in caplog.text


def test_a_configured_model_the_policy_refuses_is_warned_about_for_an_agent_that_only_analyzes(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    policy = write_policy(allowed_side_effects=["read_docs", "llm_inference"], models_by_tier={"0": ["small-model"]})
    build_server(settings_with(policy_path=policy))
    assert (
        "is not allowed for tier 0 by the policy of agent llm-planner-001: its analyze will be refused" in caplog.text
    )
