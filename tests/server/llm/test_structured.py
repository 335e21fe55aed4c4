"""Structured replies: the Plan schema is asked for where the endpoint takes it, and every reply is validated."""

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from contracts import Plan
from ledger.reader import Snapshot
from server import Settings
from tests.conftest import PLAN, call, call_once, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.server.llm.conftest import plan_reply

pytestmark = pytest.mark.anyio


async def test_the_endpoint_is_asked_for_the_plan_schema_in_the_strict_form(
    llm_settings: Settings, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text(plan_reply()))
    _, output = await call_once(llm_settings, "generate_plan", {"description": "Add a VM"})
    body = llm.chat_requests[0].json
    assert not {"tools", "functions", "tool_choice", "function_call"} & body.keys()
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    spec = response_format["json_schema"]
    assert (spec["name"], spec["strict"]) == ("plan", True)
    schema = spec["schema"]
    assert set(schema["required"]) == set(Plan.model_fields) and schema["additionalProperties"] is False
    step = schema["properties"]["steps"]["items"]
    assert step["required"] == ["step", "action", "reversible", "rollback"] and step["additionalProperties"] is False
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    jsonschema.validate(PLAN, schema)  # what we accept, the schema allows
    provenance = output["provenance"]
    assert provenance["llm_structured_output"] is True and provenance["llm_attempts"] == 1
    assert provenance["llm_finish_reason"] == "stop"


async def test_analyze_asks_for_the_analysis_schema(llm_settings: Settings, llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.text('{"analysis": "ok", "confidence": 0.9, "assumptions": [], "uncertainties": []}'))
    async with connect(llm_settings) as client:
        await call(client, "analyze", {"description": "Why?"})
    spec = llm.chat_requests[0].json["response_format"]["json_schema"]
    assert spec["name"] == "analysis"
    assert set(spec["schema"]["required"]) == {"analysis", "confidence", "assumptions", "uncertainties"}


async def test_an_endpoint_without_structured_outputs_is_asked_again_without_and_then_never_with(
    llm_settings: Settings, llm: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    llm.supports_response_format = False
    llm.enqueue(Reply.text(f"Sure! Here it is:\n{plan_reply()}"), Reply.text(plan_reply()))
    async with connect(llm_settings) as client:
        _, first = await call(client, "generate_plan", {"description": "Add a VM"})
        _, second = await call(client, "generate_plan", {"description": "Add a VM"})
    sent = [("response_format" in r.json) for r in llm.chat_requests]
    assert sent == [True, False, False]
    assert first["decision"] == "EXECUTE" and first["plan"] == PLAN  # extracted from the prose
    assert first["provenance"]["llm_structured_output"] is False and first["provenance"]["llm_attempts"] == 1
    assert second["decision"] == "EXECUTE"
    assert "refused a request with response_format (HTTP 400)" in caplog.text


async def test_a_bad_request_that_is_not_about_the_schema_does_not_turn_the_schema_off(
    llm_settings: Settings, llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.error(400, "max_tokens is too large"), Reply.error(400, "max_tokens is too large"))
    llm.enqueue(Reply.text(plan_reply()))
    async with connect(llm_settings) as client:
        _, failed = await call(client, "generate_plan", {"description": "Add a VM"})
        _, output = await call(client, "generate_plan", {"description": "Add a VM"})
    assert failed["error"]["type"] == "LLM_HTTP_ERROR" and "HTTP 400" in failed["error"]["message"]
    assert [("response_format" in r.json) for r in llm.chat_requests] == [True, False, True]
    assert output["provenance"]["llm_structured_output"] is True


async def test_structured_output_can_be_turned_off(settings_with: Callable[..., Settings], llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.text(plan_reply()))
    _, output = await call_once(
        settings_with({"structured_output": "off"}), "generate_plan", {"description": "Add a VM"}
    )
    assert "response_format" not in llm.chat_requests[0].json
    assert output["decision"] == "EXECUTE" and output["provenance"]["llm_structured_output"] is False


async def test_a_reply_cut_off_at_max_tokens_is_escalated_and_says_why(
    settings_with: Callable[..., Settings], llm: FakeOpenAI
) -> None:
    llm.enqueue(Reply.text(plan_reply()[:120], finish_reason="length"))
    _, output = await call_once(settings_with({"max_tokens": 64}), "generate_plan", {"description": "Add a VM"})
    assert llm.chat_requests[0].json["max_tokens"] == 64
    assert output["decision"] == "ESCALATE" and output["confidence"] == 0.0
    assert "cut off at the 64-token limit" in output["notes_for_humans"]
    assert output["provenance"]["llm_finish_reason"] == "length"


async def test_a_huge_reply_is_not_parsed_and_only_a_bounded_part_is_kept(
    llm_settings: Settings, llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.text(plan_reply() + " " * 300_000))
    async with connect(llm_settings) as client:
        result, output = await call(client, "generate_plan", {"description": "Add a VM"})
        after, _ = await call(client, "list_docs")
    assert not result.is_error and not after.is_error
    assert output["decision"] == "ESCALATE" and output["plan"] is None
    assert "more than the 200000 parsed" in output["notes_for_humans"]
    assert len(output["llm_response"]) <= 4100
    assert rows(ledger_path)[0]["decision"] == "ESCALATE"


@pytest.mark.parametrize(
    ("usage", "recorded"),
    [
        ({"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}, (120, 30, 150)),
        ({"prompt_tokens": 120, "completion_tokens": 30}, (120, 30, 150)),  # total left out: summed
        (None, None),  # an endpoint that reports no usage
    ],
)
async def test_token_usage_from_the_reply_is_in_the_output_and_the_ledger(
    llm_settings: Settings, llm: FakeOpenAI, ledger_path: Path, usage: dict[str, int] | None, recorded: tuple[int, ...]
) -> None:
    llm.enqueue(Reply.text(plan_reply(), usage=usage))
    _, output = await call_once(llm_settings, "generate_plan", {"description": "Add a VM"})
    [row] = rows(ledger_path)
    if recorded is None:
        assert output["provenance"]["usage"] is None
        assert (row["prompt_tokens"], row["completion_tokens"]) == (None, None)
        assert Snapshot(ledger_path).stats()[0]["llm_calls"] == 0
    else:
        prompt, completion, total = recorded
        assert output["provenance"]["usage"] == {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": total,
        }
        assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
        [stats] = Snapshot(ledger_path).stats()
        assert (stats["prompt_tokens"], stats["completion_tokens"], stats["llm_calls"]) == (prompt, completion, 1)
