"""An LLM endpoint is an adversary too: what it sends back is checked, bounded and scrubbed before it is used.

Each test points the server at the loopback endpoint made hostile (a redirect elsewhere, absurd token counts, the
key echoed as the model, a model the policy does not list, a gzip bomb, a reply that drips) and checks what the
caller gets, what the ledger records and what the budget counts.
"""

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from ledger import verify
from ledger.reader import Snapshot
from server import Settings
from tests.conftest import API_KEY, call, call_once, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import host_env
from tests.server.llm.conftest import plan_reply

pytestmark = pytest.mark.anyio

_MAX_TOKENS = 500
_PLAN = {"description": "Add a VM"}


async def test_a_redirect_from_the_endpoint_is_not_followed_and_the_prompt_goes_nowhere_else(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    with FakeOpenAI(default=Reply.text(plan_reply())) as elsewhere:
        target = f"{elsewhere.base_url}/chat/completions"
        llm.enqueue(Reply(status=307, headers={"Location": target}), Reply(status=308, headers={"Location": target}))
        async with connect(settings_with()) as client:
            _, temporary = await call(client, "generate_plan", _PLAN)
            _, permanent = await call(client, "analyze", {"description": "Why?"})
        assert elsewhere.requests == []
    for output, status in ((temporary, 307), (permanent, 308)):
        assert output["decision"] == "ERROR" and output["error"]["type"] == "LLM_HTTP_ERROR"
        assert f"answered with a redirect (HTTP {status}), which is not followed" in output["error"]["message"]
        assert "OPENAI_BASE_URL" in output["error"]["recommended_action"]
    assert len(llm.chat_requests) == 2
    assert [r["error_type"] for r in rows(ledger_path)] == ["LLM_HTTP_ERROR", "LLM_HTTP_ERROR"]


_BAD_USAGE = [
    pytest.param({"prompt_tokens": -1000, "completion_tokens": 1, "total_tokens": -999}, "prompt_tokens is -1000",
                 id="negative"),
    pytest.param({"prompt_tokens": math.nan, "completion_tokens": 1, "total_tokens": 1}, "prompt_tokens is nan",
                 id="nan"),
    pytest.param({"prompt_tokens": 10.5, "completion_tokens": 1, "total_tokens": 11}, "prompt_tokens is 10.5",
                 id="float"),
    pytest.param({"prompt_tokens": "many", "completion_tokens": 1, "total_tokens": 2}, "a JSON str", id="string"),
    pytest.param({"prompt_tokens": 2**63, "completion_tokens": 1, "total_tokens": 2**63 + 1},
                 "prompt_tokens is 9223372036854775808", id="huge"),
    pytest.param({"prompt_tokens": 5, "total_tokens": 5}, "completion_tokens is missing", id="missing"),
    pytest.param({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 3}, "total_tokens is 3, not",
                 id="inconsistent"),
]  # fmt: skip


@pytest.mark.parametrize(("usage", "says"), _BAD_USAGE)
async def test_a_token_usage_that_cannot_be_right_is_counted_as_the_calls_worst_case(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path, usage: dict[str, Any], says: str
) -> None:
    llm.enqueue(Reply.text(plan_reply(), usage=usage))
    result, output = await call_once(settings_with({"max_tokens": _MAX_TOKENS}), "generate_plan", _PLAN)
    assert not result.is_error and output["decision"] == "EXECUTE"
    counted = output["provenance"]["usage"]
    # The worst case: all of max_tokens, and a prompt of one token per byte sent (the reservation's bound).
    sent = len(llm.chat_requests[0].body)
    assert counted["completion_tokens"] == _MAX_TOKENS and 1000 < counted["prompt_tokens"] < 2 * sent
    assert counted["total_tokens"] == counted["prompt_tokens"] + _MAX_TOKENS
    [note] = [a for a in output["assumptions"] if "token usage that cannot be right" in a]
    assert says in note and f"counted at the most it could have cost, {counted['total_tokens']} tokens" in note
    [row] = rows(ledger_path)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (counted["prompt_tokens"], _MAX_TOKENS)
    assert verify(ledger_path).status == "ok"


async def test_negative_usage_cannot_spend_past_the_daily_budget(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI, ledger_path: Path
) -> None:
    # Each call reports it gave tokens back: believed, every call would fit under the budget.
    llm.default = Reply.text(plan_reply(), usage={"prompt_tokens": -100_000, "completion_tokens": 600,
                                                  "total_tokens": -99_400})  # fmt: skip
    settings = settings_with({"max_tokens": 600}, policy_path=write_policy(daily_token_budget=20_000))
    async with connect(settings) as client:
        outputs = [(await call(client, "generate_plan", _PLAN))[1] for _ in range(6)]
    refused = [o for o in outputs if o["error"] and o["error"]["type"] == "TOKEN_BUDGET_EXHAUSTED"]
    assert len(llm.chat_requests) < 6 and len(refused) == 6 - len(llm.chat_requests)
    [stats] = Snapshot(ledger_path).stats()
    assert stats["prompt_tokens"] > 0 and stats["completion_tokens"] == 600 * len(llm.chat_requests)


async def test_a_usage_too_large_to_store_leaves_the_ledger_writable_by_everyone_and_the_next_call_works(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.text(plan_reply(), usage={"prompt_tokens": 2**63, "completion_tokens": 1, "total_tokens": 1}))
    llm.enqueue(Reply.text(plan_reply()))
    async with connect(settings_with()) as client:
        poisoned, output = await call(client, "generate_plan", _PLAN)
        # Another process takes the write lock right after, well within its own short busy timeout.
        other = subprocess.run(
            [sys.executable, "-c", _WRITE_LOCK, str(ledger_path)], capture_output=True, text=True, timeout=60
        )
        after, _ = await call(client, "generate_plan", _PLAN)
    assert other.returncode == 0, other.stderr
    assert not poisoned.is_error and output["provenance"]["usage"]["completion_tokens"] == 2000
    assert not after.is_error
    intents, outcomes = rows(ledger_path, "call_intents"), rows(ledger_path)
    assert [o["intent_id"] for o in outcomes] == [i["id"] for i in intents] and len(outcomes) == 2
    assert verify(ledger_path).status == "ok"


_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=0.5, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("ROLLBACK")
"""


async def test_the_endpoint_echoing_the_key_as_its_model_gets_no_key_back_to_the_client_or_the_ledger(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.text(plan_reply(), model=API_KEY, finish_reason=f"stop {API_KEY}"))
    result, output = await call_once(settings_with(), "generate_plan", _PLAN)
    assert API_KEY not in json.dumps(output) and API_KEY not in result.content[0].text  # type: ignore[union-attr]
    assert output["llm_model"] == "[REDACTED]" and output["provenance"]["llm_finish_reason"] == "stop [REDACTED]"
    assert not any(API_KEY in json.dumps(row) for row in rows(ledger_path))


async def test_a_key_the_model_writes_with_json_escapes_is_scrubbed_from_the_answer_it_decodes_to(
    settings_with: Callable[..., Settings], llm: FakeOpenAI
) -> None:
    # In the raw reply the key is not there to find (`\\u0061` for `a`); the plan decoded from it holds it whole.
    escaped = API_KEY.replace("a", "\\u0061")
    llm.enqueue(Reply.text(plan_reply().replace('"Add a VM to the prod pool"', f'"Use {escaped}"')))
    result, output = await call_once(settings_with(), "generate_plan", _PLAN)
    assert not result.is_error and output["plan"]["title"] == "Use [REDACTED]"
    assert API_KEY not in json.dumps(output) and API_KEY not in result.content[0].text  # type: ignore[union-attr]


async def test_a_long_or_broken_model_name_is_cut_and_stays_storable(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.text(plan_reply(), model="m\ud800" + "x" * 100_000))
    result, output = await call_once(settings_with(), "generate_plan", _PLAN)
    assert not result.is_error
    assert output["llm_model"].startswith("m\\ud800xxx") and len(output["llm_model"]) < 300
    assert rows(ledger_path)[0]["llm_model"] == output["llm_model"]


async def test_a_reply_from_a_model_the_policy_does_not_list_for_the_tier_is_escalated(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.text(plan_reply(), model="cheap-model"), Reply.text(plan_reply(), model="test-model-2025-01-31"))
    settings = settings_with(policy_path=write_policy(models_by_tier={"0": ["test-model"]}))
    async with connect(settings) as client:
        _, swapped = await call(client, "generate_plan", _PLAN)
        _, snapshot = await call(client, "generate_plan", _PLAN)
    assert swapped["decision"] == "ESCALATE" and swapped["llm_model"] == "cheap-model"
    assert "answered with the model 'cheap-model', which the policy" in swapped["notes_for_humans"]
    assert "does not list for tier 0 (allowed: test-model). Otherwise: EXECUTE" in swapped["notes_for_humans"]
    # A dated snapshot of an allowed model is that model.
    assert snapshot["decision"] == "EXECUTE"
    assert [r["decision"] for r in rows(ledger_path)] == ["ESCALATE", "EXECUTE"]


def _completion(*choices: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "model": "m", "choices": list(choices)}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_completion(), id="no-choices"),
        pytest.param(_completion({"index": 0, "message": {"role": "assistant", "content": 42}}), id="content-number"),
        pytest.param(_completion({"index": 0, "message": {"role": "assistant", "content": ["a"]}}), id="content-list"),
        pytest.param("[" * 100_000, id="nested-too-deeply"),
    ],
)
async def test_a_completion_without_text_to_read_is_an_invalid_reply(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path, body: dict[str, Any] | str
) -> None:
    llm.enqueue(Reply(body=body, headers={"Content-Type": "application/json"}))
    result, output = await call_once(settings_with(), "analyze", {"description": "Why?"})
    assert result.is_error and output["error"]["type"] == "LLM_INVALID_REPLY"
    assert rows(ledger_path)[0]["error_type"] == "LLM_INVALID_REPLY"


async def test_a_reply_that_drips_ends_at_the_calls_deadline_and_its_connection_is_closed(
    settings_with: Callable[..., Settings], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.enqueue(Reply.text(plan_reply(), drip=0.05))
    result, output = await call_once(settings_with({"timeout_s": 1}), "generate_plan", _PLAN)
    assert result.is_error and output["error"]["type"] == "LLM_TIMEOUT"
    with anyio.fail_after(5):
        await anyio.to_thread.run_sync(llm.wait_for_abandoned, 1)
    assert rows(ledger_path)[0]["error_type"] == "LLM_TIMEOUT"


_MEASURED = """
import re, sys
from pathlib import Path
from server.cli.main import main
try:
    code = main(sys.argv[1:])
finally:
    # This process's own peak: getrusage's also counts the parent's, when it was forked from a large one.
    print("peak-rss-kib", re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text())[1], file=sys.stderr)
sys.exit(code)
"""

_BOMB_BYTES = 400 * 2**20
_PEAK_BOUND_KIB = 300 * 2**10
"""Far above a call's own peak (about 100 MiB in all), far below the bomb's decoded size."""


@pytest.mark.subprocess
def test_a_gzip_bomb_from_the_endpoint_is_refused_without_decoding_it_whole(llm: FakeOpenAI, ledger_path: Path) -> None:
    llm.default = Reply.gzip_bomb(_BOMB_BYTES)
    env = host_env(ledger_path, OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=llm.base_url, PLANNER_MCP_MODEL="test-model")
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, "call", "generate_plan", json.dumps(_PLAN)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = json.loads(done.stdout)
    assert output["error"]["type"] == "LLM_INVALID_REPLY"
    assert "a body larger than 8388608 bytes (decoded), not read" in output["error"]["message"]
    peak = int(done.stderr.strip().splitlines()[-1].removeprefix("peak-rss-kib "))
    assert peak < _PEAK_BOUND_KIB
    assert rows(ledger_path)[0]["error_type"] == "LLM_INVALID_REPLY"
