"""The fast client counts only calls that succeeded, each against its own request: answers are matched by id
with N calls really in flight, and an error of either kind (JSON-RPC's, or a result with `isError`) stops the run.

No figure is compared with a limit here; only what the driver does is checked.
"""

import sys
from typing import TextIO

import pytest
from mcp import StdioServerParameters

from bench.processes import ROOT, Launch
from bench.sessions import Call
from bench.wire import WireError, answer_id, stdio_peer
from bench.workspace import READS, Workspace

pytestmark = pytest.mark.subprocess

_CALL = Call("anything", {"name": "x"})


def _held(holds: int, mode: str = "ok") -> Launch:
    args = ["-m", "tests.bench.held_peer", str(holds), mode]
    return Launch("held", StdioServerParameters(command=sys.executable, args=args, cwd=ROOT))


def test_calls_stay_n_in_flight_and_answers_out_of_order_are_matched_to_their_calls(errlog: TextIO) -> None:
    # The peer answers nothing until it holds 8 requests, then answers them last first, after a notification.
    with stdio_peer(_held(8), errlog) as peer:
        peer.timeout_s = 30
        batch = peer.run(_CALL, 24, concurrency=8)
    assert batch.max_in_flight == 8
    assert len(batch.latencies_s) == 24 and all(t > 0 for t in batch.latencies_s)


def test_a_driver_with_fewer_calls_in_flight_than_asked_stalls_and_says_so(errlog: TextIO) -> None:
    with stdio_peer(_held(8), errlog) as peer:
        peer.timeout_s = 1
        with pytest.raises(WireError, match="no answer within 1 s; 7 calls outstanding"):
            peer.run(_CALL, 14, concurrency=7)


@pytest.mark.parametrize(
    ("mode", "says"),
    [("error", "a JSON-RPC error answered call"), ("is-error", "answered isError"), ("stray", "not in flight")],
)
def test_an_answer_that_is_not_a_successful_result_of_a_call_in_flight_fails_the_run(
    mode: str, says: str, errlog: TextIO
) -> None:
    with stdio_peer(_held(2, mode), errlog) as peer, pytest.raises(WireError, match=says):
        peer.timeout_s = 30
        peer.run(_CALL, 2, concurrency=2)


@pytest.mark.anyio
async def test_a_refusal_by_planner_mcp_fails_the_run(workspace: Workspace, errlog: TextIO) -> None:
    with stdio_peer(workspace.planner("planner", "ledger"), errlog) as peer:
        assert len(peer.run(READS["read_docs"], 3).latencies_s) == 3
        with pytest.raises(WireError, match=r"answered isError: .*NOT_FOUND"):
            peer.run(Call("read_docs", {"name": "no-such-runbook"}), 1)


def test_an_answer_is_judged_on_its_fields_whatever_its_layout() -> None:
    assert answer_id(b'{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":false}}') == 7
    # An `isError` of the payload's own, inside the structured content, is not the result's.
    nested = b'{"jsonrpc":"2.0","id":8,"result":{"isError":false,"structuredContent":{"isError":true}}}'
    assert answer_id(nested) == 8
    assert answer_id(b'{"jsonrpc": "2.0", "id": 9, "result": {"content": []}}') == 9
    assert answer_id(b'{"jsonrpc":"2.0","method":"notifications/message","params":{}}') is None
    with pytest.raises(WireError, match="answered isError"):
        answer_id(b'{"jsonrpc": "2.0", "id": 9, "result": {"content": [], "isError": true}}')
    with pytest.raises(WireError, match="JSON-RPC error"):
        answer_id(b'{"id":3,"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"}}')
    with pytest.raises(WireError, match="not JSON"):
        answer_id(b'{"jsonrpc":"2.0","id":3,"result":{"content":[]}')  # cut short
