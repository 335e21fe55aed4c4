"""The LLM settings a host sets in its environment, and the errors that name them."""

import pytest

from server.config.settings import Settings, SettingsError

HOME = {"HOME": "/nonexistent-home"}


def test_the_llm_limits_are_read_from_the_environment() -> None:
    env = {
        **HOME,
        "PLANNER_MCP_LLM_TIMEOUT": "12.5",
        "PLANNER_MCP_LLM_RETRIES": "4",
        "PLANNER_MCP_LLM_MAX_TOKENS": "800",
        "PLANNER_MCP_LLM_STRUCTURED": "OFF",
    }
    llm = Settings.from_env(env).llm
    assert (llm.timeout_s, llm.max_retries, llm.max_tokens, llm.structured_output) == (12.5, 4, 800, "off")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PLANNER_MCP_LLM_RETRIES", "11"),
        ("PLANNER_MCP_LLM_RETRIES", "two"),
        ("PLANNER_MCP_LLM_MAX_TOKENS", "0"),
        ("PLANNER_MCP_LLM_TIMEOUT", "3600"),
        ("PLANNER_MCP_LLM_STRUCTURED", "sometimes"),
    ],
)
def test_a_bad_llm_setting_is_refused_with_its_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({**HOME, name: value})
