"""A token budget is a budget: calls running at once, in one process or many, cannot spend past it together.

Each reply of the loopback endpoint reports 18 tokens and takes a while, so calls overlap. With a budget of 40,
the first call reserves its worst case (`max_tokens` and its prompt) and every call that arrives while it runs
is refused; only once it has settled at 18 may another start.
"""

import json
import subprocess
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import pytest

from ledger import verify
from ledger.reader import Snapshot
from server import Settings
from tests.conftest import API_KEY, call, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import server_process
from tests.server.llm.conftest import plan_reply

pytestmark = pytest.mark.anyio

_BUDGET = 40
_CALLS = 12
_PROCESSES = 6


async def test_calls_running_at_once_in_one_process_cannot_overspend_the_budget_together(
    settings_with: Callable[..., Settings], write_policy: Callable[..., Path], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.default = Reply.text(plan_reply(), delay=0.5)
    settings = settings_with(policy_path=write_policy(daily_token_budget=_BUDGET))
    outputs: list[dict[str, Any]] = []
    async with connect(settings) as client, anyio.create_task_group() as tg:

        async def plan(n: int) -> None:
            outputs.append((await call(client, "generate_plan", {"description": f"Add VM {n}"}))[1])

        for n in range(_CALLS):
            tg.start_soon(plan, n)
    ran = [o for o in outputs if o["decision"] != "ERROR"]
    refused = [o for o in outputs if o["error"] and o["error"]["type"] == "TOKEN_BUDGET_EXHAUSTED"]
    assert (len(ran), len(refused)) == (1, _CALLS - 1)
    assert len(llm.chat_requests) == 1
    [stats] = Snapshot(ledger_path).stats()
    assert stats["prompt_tokens"] + stats["completion_tokens"] == 18
    assert verify(ledger_path).status == "ok"


@pytest.mark.subprocess
def test_calls_in_separate_processes_on_one_ledger_cannot_overspend_the_budget_together(
    write_policy: Callable[..., Path], llm: FakeOpenAI, ledger_path: Path
) -> None:
    llm.default = Reply.text(plan_reply(), delay=2.0)
    env = {
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_BASE_URL": llm.base_url,
        "PLANNER_MCP_MODEL": "test-model",
        "PLANNER_MCP_POLICY": str(write_policy(daily_token_budget=_BUDGET)),
    }
    with ExitStack() as processes:
        started = [
            processes.enter_context(server_process(
                ledger_path, "call", "generate_plan", json.dumps({"description": f"Add VM {n}"}), env=env,
                stdin=None, stderr=subprocess.DEVNULL, text=True,
            ))
            for n in range(_PROCESSES)
        ]  # fmt: skip
        outputs = [json.loads(p.communicate(timeout=60)[0]) for p in started]
    ran = [o for o in outputs if o["decision"] != "ERROR"]
    refused = [o for o in outputs if o["error"] and o["error"]["type"] == "TOKEN_BUDGET_EXHAUSTED"]
    assert len(ran) + len(refused) == _PROCESSES
    # While one call runs, every other is refused; a later one may start only after it settled at 18 tokens,
    # so at most three run one after another (0, 18, 36: each under 40) and the day ends at most 14 over.
    assert 1 <= len(ran) <= 3 and len(llm.chat_requests) == len(ran)
    spent = sum((r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0) for r in rows(ledger_path))
    assert spent == 18 * len(ran) and spent < _BUDGET + 18
    assert verify(ledger_path).status == "ok"
