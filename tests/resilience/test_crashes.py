"""Crashes: stdio server processes on one ledger file, killed with SIGKILL at random moments, 200 times.

Each server is driven with raw JSON-RPC lines (reads, the stepped list_docs, refusals; one call or a burst in
flight at a time) and killed a random delay after its handshake is answered, so kills land mid-call, mid-commit
and between calls. What must hold afterwards: the chain is unbroken (the only finding allowed is an intent without
an outcome, a call the kill cut off), every call whose answer a client received is recorded once with its intent,
and a fresh server on the same ledger serves and records a call.
"""

import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

from ledger import verify
from tests.resilience.fleet import RawServer, audit_ledger, official_client, raw_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.subprocess]

LANES = 4
KILLS_PER_LANE = 50
MAX_DELAY = 0.25
"""Seconds after the handshake's answer within which the kill comes (uniformly): a few dozen calls at most."""
MAX_PAUSE = 0.02

_READS: list[tuple[str, dict[str, Any]]] = [
    ("read_docs", {"name": "backup-restore"}),
    ("read_docs", {"name": "node-maintenance"}),
    ("read_inventory", {}),
    ("list_docs", {}),
]
_REFUSALS: dict[str, str] = {"execute_shell": "FORBIDDEN_ACTION", "ssh": "FORBIDDEN_ACTION"}
_REFUSAL_SHARE = 0.1


@dataclass
class _Tally:
    received: dict[str, bool] = field(default_factory=dict)
    """Request id (the server's) -> whether the call was refused, for every call whose answer a client read."""
    unanswered: set[str] = field(default_factory=set)
    """JSON-RPC ids of the calls sent but not answered before the kill."""
    kills: int = 0
    idle_kills: int = 0
    """Kills that came with no call in flight: between calls."""
    sent: int = 0


def _pick(rng: random.Random) -> tuple[str, dict[str, Any]]:
    if rng.random() < _REFUSAL_SHARE:
        return rng.choice(sorted(_REFUSALS)), {"command": "reboot"}
    return rng.choice(_READS)


async def _drive(server: RawServer, rng: random.Random) -> None:
    """Calls until cancelled: a burst in flight, one at a time, or one at a time with pauses (so that some kills
    find the server idle between calls)."""
    burst, pause = rng.choice(((5, 0.0), (2, 0.0), (1, 0.0), (1, MAX_PAUSE)))
    while True:
        for ident in await server.call_tools(_pick(rng) for _ in range(burst)):
            await server.wait(ident)
        if pause:
            await anyio.sleep(rng.uniform(0, pause))  # the kill's moment is the point here, not a wait for a state


def _keep(server: RawServer, tally: _Tally) -> None:
    """Check every answer the client read, and note its request id."""
    for ident, reply in server.replies.items():
        params = server.requests[ident]["params"]
        if server.requests[ident]["method"] != "tools/call":
            continue
        result = reply["result"]
        content = result["structuredContent"]
        refusal = _REFUSALS.get(params["name"])
        error_type = (content.get("error") or {}).get("type")
        expected = ("ERROR", refusal, True) if refusal else ("EXECUTE", None, False)
        assert (content["decision"], error_type, result["isError"]) == expected, (ident, content.get("error"))
        tally.received[content["request_id"]] = refusal is not None
    calls = {i for i, r in server.requests.items() if r["method"] == "tools/call"}
    tally.sent += len(calls)
    tally.unanswered |= calls - set(server.replies)


async def _lane(lane: int, seed: int, ledger_path: Path, tmp_path: Path, tally: _Tally) -> None:
    with (tmp_path / f"lane-{lane}.log").open("w") as errlog:
        for life in range(KILLS_PER_LANE):
            rng = random.Random(f"{seed}/{lane}/{life}")  # each life's schedule replays from the seed alone
            with anyio.fail_after(60):
                async with raw_server(ledger_path, errlog, f"l{lane}k{life}") as server:
                    await server.initialize()
                    with anyio.move_on_after(rng.uniform(0, MAX_DELAY)):
                        await _drive(server, rng)
                    server.kill()
                    tally.idle_kills += not server.unanswered
                    # Killed, not dead of its own error: a server that failed on what the others left is a bug.
                    assert await server.ended() == -signal.SIGKILL, f"seed {seed}: {server.name} exited on its own"
            tally.kills += 1
            _keep(server, tally)


async def test_servers_killed_at_random_moments_leave_an_unbroken_chain_with_every_received_answer(
    ledger_path: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("RESILIENCE_KILL_SEED", random.randrange(2**32)))
    print(f"RESILIENCE_KILL_SEED={seed}")  # shown by pytest when the test fails: rerun with it to replay the kills
    tally = _Tally()
    started = time.monotonic()
    with anyio.fail_after(420):  # a watchdog: about 110 s on an idle 2-core machine, over 200 s on a busy one
        async with anyio.create_task_group() as group:
            for lane in range(LANES):
                group.start_soon(_lane, lane, seed, ledger_path, tmp_path, tally)
    wall = time.monotonic() - started

    assert tally.kills == LANES * KILLS_PER_LANE
    assert 0 < tally.idle_kills < tally.kills, f"seed {seed}: the kills did not land both mid-call and between calls"
    assert tally.received, f"seed {seed}: no answer was received before any kill; the test proved nothing"
    report = verify(ledger_path)
    assert report.kinds() <= {"incomplete"}, (seed, [str(f) for f in report.findings if f.kind != "incomplete"])
    audit = audit_ledger(ledger_path, tally.received)
    # Only calls the kills cut off are incomplete, and each of them was sent and never answered.
    incomplete_seqs = {f.seq for f in report.findings if f.kind == "incomplete"}
    assert incomplete_seqs == {audit.intents[rid]["seq"] for rid in audit.incomplete}
    cut_off = {audit.intents[rid]["client_request_id"] for rid in audit.incomplete}
    assert cut_off <= tally.unanswered, (
        f"seed {seed}: incomplete intents of answered calls: {cut_off - tally.unanswered}"
    )
    [metrics] = audit.metrics
    assert metrics["total_runs"] == len(audit.outcomes)

    # A fresh server on the ledger the kills left serves a call, and records it.
    with (tmp_path / "after.log").open("w") as errlog, anyio.fail_after(60):
        async with official_client(ledger_path, errlog) as client:
            result = await client.call_tool("read_docs", {"name": "backup-restore"})
    assert not result.is_error and result.structured_content is not None
    after = result.structured_content["request_id"]
    final = audit_ledger(ledger_path, {**tally.received, after: False})
    assert final.outcomes[after]["decision"] == "EXECUTE" and final.incomplete <= audit.incomplete
    assert verify(ledger_path).kinds() <= {"incomplete"}
    print(
        f"crashes: {tally.kills} kills ({tally.idle_kills} between calls) in {LANES} lanes, {tally.sent} calls "
        f"sent, {len(tally.received)} answers received, {len(tally.unanswered)} cut off, {len(final.outcomes)} "
        f"outcomes, {len(final.intents)} intents, {len(final.incomplete)} incomplete intents, {final.chained_rows} "
        f"chained rows, in {wall:.1f}s (seed {seed})"
    )
