"""An error says what the call got done before it failed, in words: never the seed's "None", which a reader (or a
model) takes for a missing value."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.config.settings import Settings
from tests.conftest import call, connect, policy_file

pytestmark = pytest.mark.anyio

_ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    ("ssh", {}, "FORBIDDEN_ACTION", "Nothing: the call was refused before anything was read"),
    ("read_docs", {"name": "../secret"}, "INVALID_NAME", "Nothing: the call was refused before anything was read"),
    ("read_docs", {"name": "no-such-runbook"}, "NOT_FOUND", "The call's intent was recorded; the call produced"),
    ("generate_plan", {"description": "Patch the nodes"}, "MODEL_NOT_ALLOWED", "Nothing: the call was refused"),
]


@pytest.mark.parametrize(("tool", "arguments", "kind", "progress"), _ERRORS)
async def test_an_error_says_in_words_what_the_call_got_done(
    make_settings: Callable[..., Settings], tmp_path: Path, tool: str, arguments: dict[str, Any], kind: str,
    progress: str,
) -> None:  # fmt: skip
    # A model listed for no tier: generate_plan is registered, and refused at admission (no LLM is reached).
    policy = policy_file(tmp_path / "policy.toml", models_by_tier={"1": ["other-model"]})
    settings = make_settings(policy_path=policy)
    settings = settings.model_copy(update={"llm": settings.llm.model_copy(update={"model": "test-model"})})
    async with connect(settings) as client:
        _, output = await call(client, tool, arguments)
    assert output["error"]["type"] == kind
    assert output["error"]["partial_progress"].startswith(progress)
