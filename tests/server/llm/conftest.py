"""Fixtures for the LLM tools: a policy file written the way an operator would, and a plan reply."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contracts import default_agent
from server import Settings
from server.settings import LLMConfig
from tests.conftest import API_KEY, PLAN
from tests.peers.openai_server import FakeOpenAI


def plan_reply(**changes: Any) -> str:
    return json.dumps({**PLAN, **changes})


def _toml(value: Any) -> str:
    return json.dumps(sorted(value) if isinstance(value, frozenset | set) else value)


@pytest.fixture
def write_policy(tmp_path: Path) -> Callable[..., Path]:
    """A policy TOML file: the seed's tier-0 planner with `changes` applied (tables as dicts)."""

    def write(**changes: Any) -> Path:
        fields = {**default_agent().model_dump(exclude_none=True), **changes}
        tables = {k: v for k, v in fields.items() if isinstance(v, dict)}
        lines = [f"{k} = {_toml(v)}" for k, v in fields.items() if k not in tables and v is not None]
        for table, entries in tables.items():
            lines += [f"[{table}]", *(f'"{k}" = {_toml(v)}' for k, v in entries.items())]
        path = tmp_path / "policy.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

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
