"""Ledger appends per second: in one process, and from several processes sharing one ledger, with no loss.

An append is one chained row. Writers record calls as the server does, an intent then its outcome (the
outcome also updates the agent's metrics in its transaction), each its own transaction at the ledger's
configured durability. The ledger is a SQLite file or a `postgresql://` URL: the same code measures both.
`python -m bench.ledger_load CALLS START` is one writer process on the ledger named by PLANNER_MCP_LEDGER
(in the environment, so a URL's password is not on a command line): it waits for the wall-clock time START
so that all writers begin together, and prints one JSON line.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ledger import Intent, Ledger, Outcome, verify
from ledger.reader import read_only
from ledger.storage import Location

__all__ = ["append_calls", "main", "one_process", "shared_file"]


def append_calls(ledger: Ledger, calls: int) -> None:
    """Record `calls` calls (2 x `calls` appends), each an intent and then its outcome."""
    for i in range(calls):
        request_id = uuid.uuid4().hex
        common: dict[str, Any] = {
            "request_id": request_id,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "agent_id": "bench",
            "agent_version": "1",
            "tier": 0,
            "action": "read_docs",
            "arguments": {"name": f"doc-{i % 7}"},
            "tools_digest": "sha256:" + "0" * 64,
            "client_request_id": str(i),
        }
        intent = ledger.record_intent(Intent(**common))
        ledger.record_outcome(
            Outcome(
                **common,
                decision="EXECUTE",
                confidence=1.0,
                success=True,
                intent_id=intent.id,
                duration_ms=1.0,
                output_digest="sha256:" + "1" * 64,
            )
        )


def one_process(location: Location, calls: int) -> dict[str, Any]:
    ledger = Ledger(location)
    ledger.open()
    try:
        started = time.perf_counter()
        append_calls(ledger, calls)
        elapsed = time.perf_counter() - started
    finally:
        ledger.close()
    appends = 2 * calls
    return {"appends": appends, "seconds": round(elapsed, 4), "per_second": round(appends / elapsed, 1)}


def shared_file(location: Location, processes: int, calls: int) -> dict[str, Any]:
    """`processes` writers on one ledger; the rate is all their appends over the span from first start to last
    end, and the ledger is then verified: every append present once, the chain intact."""
    created = Ledger(location)
    created.open()  # the schema and its events are written before the clock starts
    created.close()
    before = _chained_rows(location)
    start = time.time() + 1.0 + 0.2 * processes  # after every interpreter is up
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.ledger_load", str(calls), repr(start)],
            env={**os.environ, "PLANNER_MCP_LEDGER": str(location)},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    spans = []
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        if worker.returncode != 0:
            raise RuntimeError(f"a ledger writer failed with exit code {worker.returncode}")
        spans.append(json.loads(out))
    elapsed = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    appends = 2 * calls * processes
    report = verify(location)
    written = _chained_rows(location) - before
    return {
        "processes": processes,
        "appends": appends,
        "seconds": round(elapsed, 4),
        "per_second": round(appends / elapsed, 1),
        "rows_written": written,
        "lost": appends - written,
        "verify": report.status,
        "findings": [str(f) for f in report.findings[:5]],
    }


def _chained_rows(location: Location) -> int:
    with read_only(location) as conn:
        return int(
            sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("call_intents", "agent_actions"))
        )


def main(argv: list[str]) -> None:
    location, calls, start = _location(os.environ["PLANNER_MCP_LEDGER"]), int(argv[0]), float(argv[1])
    ledger = Ledger(location, busy_timeout_s=30.0)
    ledger.open()
    time.sleep(max(0.0, start - time.time()))
    began = time.time()
    append_calls(ledger, calls)
    ended = time.time()
    ledger.close()
    print(json.dumps({"start": began, "end": ended}))


def _location(text: str) -> Location:
    """A writer's argument as the ledger takes it: a URL stays a string (a Path would fold its `//`)."""
    return text if "://" in text else Path(text)


if __name__ == "__main__":
    main(sys.argv[1:])
