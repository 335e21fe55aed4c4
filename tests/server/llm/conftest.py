"""Fixtures for the LLM tools: a policy file written the way an operator would, settings with LLM changes, and a
plan reply."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import PLAN, policy_file, with_part


def plan_reply(**changes: Any) -> str:
    return json.dumps({**PLAN, **changes})


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """A policy TOML file: the seed's tier-0 planner with `changes` applied (tables as dicts)."""

    def write(**changes: Any) -> Path:
        return policy_file(tmp_path / "policy.toml", **changes)

    return write


@pytest.fixture
def settings_with(
    make_settings: Callable[..., Settings], llm_config: Callable[..., LLMConfig]
) -> Callable[..., Settings]:
    """Settings whose LLM config takes `llm_changes`, and whose other fields take `changes`."""
    return with_part(make_settings, "llm", llm_config)
