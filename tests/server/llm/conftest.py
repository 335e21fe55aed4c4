"""Fixtures for the LLM tools: a policy file written the way an operator would, and a plan reply."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import API_KEY, PLAN, policy_file
from tests.peers.openai_server import FakeOpenAI


def plan_reply(**changes: Any) -> str:
    return json.dumps({**PLAN, **changes})


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """A policy TOML file: the seed's tier-0 planner with `changes` applied (tables as dicts)."""

    def write(**changes: Any) -> Path:
        return policy_file(tmp_path / "policy.toml", **changes)

    return write


@pytest.fixture
def llm_config(llm: FakeOpenAI) -> Callable[..., LLMConfig]:
    """The LLM settings of the shared fixture, with changes (retries, timeouts) for one test."""

    def config(**changes: Any) -> LLMConfig:
        values: dict[str, Any] = {
            "api_key": API_KEY,
            "base_url": llm.base_url,
            "model": "test-model",
            "timeout_s": 5,
            "max_retries": 0,
            **changes,
        }
        return LLMConfig(**values)

    return config


@pytest.fixture
def settings_with(
    make_settings: Callable[..., Settings], llm_config: Callable[..., LLMConfig]
) -> Callable[..., Settings]:
    """Settings whose LLM config takes `llm_changes`, and whose other fields take `changes`."""

    def settings(llm_changes: dict[str, Any] | None = None, **changes: Any) -> Settings:
        return make_settings(llm=llm_config(**(llm_changes or {})), **changes)

    return settings
