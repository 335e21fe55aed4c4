"""`planner-mcp doctor` on the LLM endpoint: reachable, model listed, key accepted, and no tokens spent."""

from collections.abc import Callable
from pathlib import Path

import pytest

from server import Settings
from server.config.settings import LLMConfig
from server.doctor.run import Check, run_checks
from tests.conftest import API_KEY
from tests.peers.openai_server import FakeOpenAI
from tests.processes import run_cli


def _llm_checks(settings: Settings) -> dict[str, Check]:
    return {c.name: c for c in run_checks(settings) if c.name.startswith("llm")}


def test_a_healthy_endpoint_that_checks_keys_passes_every_check_without_a_completion(
    llm_settings: Settings, llm: FakeOpenAI
) -> None:
    llm.api_key = API_KEY
    checks = _llm_checks(llm_settings)
    assert {name: c.status for name, c in checks.items()} == {
        "llm": "ok",
        "llm.policy": "ok",
        "llm.endpoint": "ok",
        "llm.model": "ok",
        "llm.key": "ok",
    }
    assert "accepted the key" in checks["llm.key"].detail
    assert llm.chat_requests == []  # no tokens spent
    assert all(API_KEY not in c.detail + c.fix for c in checks.values())


def test_a_refused_key_fails_with_the_setting_to_fix(llm_settings: Settings, llm: FakeOpenAI) -> None:
    llm.api_key = "sk-another-key-0000000000000000"
    checks = _llm_checks(llm_settings)
    assert checks["llm.endpoint"].status == "fail" and "refused the key (HTTP 401)" in checks["llm.endpoint"].detail
    assert "OPENAI_API_KEY" in checks["llm.endpoint"].fix
    assert "llm.model" not in checks


def test_a_model_the_endpoint_does_not_list_fails_and_shows_what_it_does_list(
    make_settings: Callable[..., Settings],
) -> None:
    with FakeOpenAI(models=["llama3.1:8b", "qwen2.5:14b"]) as local:
        settings = make_settings(llm=LLMConfig(base_url=local.base_url, model="llama3"))
        checks = _llm_checks(settings)
    assert checks["llm.model"].status == "fail"
    assert "llama3.1:8b, qwen2.5:14b" in checks["llm.model"].detail
    assert checks["llm.key"].status == "ok" and "needs no key" in checks["llm.key"].detail


def test_an_endpoint_that_lists_models_to_anyone_leaves_the_key_unverified_and_says_so(
    llm_settings: Settings, llm: FakeOpenAI
) -> None:
    checks = _llm_checks(llm_settings)  # the peer lists models without asking for a key
    assert checks["llm.key"].status == "warn" and "not verified" in checks["llm.key"].detail


def test_an_unreachable_endpoint_fails(make_settings: Callable[..., Settings]) -> None:
    with FakeOpenAI() as gone:
        base_url = gone.base_url
    checks = _llm_checks(make_settings(llm=LLMConfig(base_url=base_url, model="m")))
    assert checks["llm.endpoint"].status == "fail" and "could not be reached" in checks["llm.endpoint"].detail


def test_a_model_the_policy_refuses_fails_the_policy_check(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path]
) -> None:
    policy = write_policy(models_by_tier={"0": ["small-model"]}, daily_token_budget=50_000)
    checks = _llm_checks(settings_with(policy_path=policy))
    assert checks["llm.policy"].status == "fail" and "allowed: small-model" in checks["llm.policy"].detail
    allowed = _llm_checks(settings_with(policy_path=write_policy(daily_token_budget=50_000)))
    assert allowed["llm.policy"].status == "ok" and "50000 tokens a day" in allowed["llm.policy"].detail


@pytest.mark.subprocess
def test_doctor_exits_non_zero_when_the_endpoint_refuses_the_key(ledger_path: Path) -> None:
    with FakeOpenAI(api_key="sk-the-right-key-000000000000000") as llm:
        done = run_cli(
            ledger_path, "doctor", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY=API_KEY, PLANNER_MCP_MODEL="test-model"
        )
        assert llm.chat_requests == []
    assert done.returncode == 1
    assert "llm.endpoint: 127.0.0.1 refused the key (HTTP 401)" in done.stdout
    assert API_KEY not in done.stdout + done.stderr


def test_the_model_names_an_endpoint_lists_are_shown_cut_to_a_bounded_length(
    llm_settings: Settings, llm: FakeOpenAI
) -> None:
    llm.models = ["m" * 100_000, "other-model"]
    checks = _llm_checks(llm_settings)
    assert checks["llm.model"].status == "fail" and "other-model" in checks["llm.model"].detail
    assert len(checks["llm.model"].detail) < 1000
