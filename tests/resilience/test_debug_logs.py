"""DEBUG logs say what the server did, not what crossed the wire: an upstream's headers and bodies stay out.

The HTTP libraries under the LLM client and the Vault store log raw request options, response headers and
bodies at DEBUG, and an endpoint can echo whatever it was sent (the API key, in a header of its reply) into them.
"""

import json
from pathlib import Path

import pytest

from tests.conftest import API_KEY, PLAN
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import run_cli

pytestmark = pytest.mark.subprocess


def test_an_api_key_an_endpoint_echoes_in_a_header_stays_out_of_debug_logs(ledger_path: Path, llm: FakeOpenAI) -> None:
    llm.enqueue(Reply.text(json.dumps(PLAN), headers={"X-Echo": f"Bearer {API_KEY}", "X-Request-Id": API_KEY}))
    env = {"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": API_KEY, "PLANNER_MCP_MODEL": "test-model"}
    proc = run_cli(ledger_path, "--log-level", "DEBUG", "call", "generate_plan", '{"description": "Add a VM"}', **env)
    assert proc.returncode == 0, proc.stderr
    assert [r.header("authorization") for r in llm.chat_requests] == [f"Bearer {API_KEY}"]  # sent, and echoed
    assert " DEBUG " in proc.stderr  # DEBUG was on
    assert API_KEY not in proc.stderr and API_KEY[-12:] not in proc.stderr
