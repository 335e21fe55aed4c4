"""One fsync per call: the intent commits without waiting for the disk, the outcome's commit syncs both; and
the head the ledger remembers between appends is looked up again whenever another connection wrote."""

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ledger import Intent, Ledger, Outcome, verify
from tests.conftest import rows

_CALLS = 40
_WRITER = textwrap.dedent(
    f"""
    import os, sys
    from pathlib import Path
    from ledger import Intent, Ledger, Outcome
    ledger = Ledger(Path(sys.argv[1]), synchronous=sys.argv[2])
    ledger.open()
    os.write(2, b"BEGIN-CALLS\\n")
    for i in range({_CALLS}):
        call = dict(request_id=f"r{{i}}", timestamp="2026-11-24T00:00:00.000Z", agent_id="a", agent_version="v",
                    tier=0, action="read_docs", arguments={{}}, tools_digest="d")
        intent = ledger.record_intent(Intent(**call))
        ledger.record_outcome(Outcome(**call, decision="EXECUTE", confidence=1.0, success=True,
                                      intent_id=intent.id))
    os.write(2, b"END-CALLS\\n")
    ledger.close()
    """
)


def _syncs_during_calls(path: Path, synchronous: str) -> int:
    done = subprocess.run(
        ["strace", "-f", "-e", "trace=fsync,fdatasync,write", "-e", "signal=none", "-o", "/dev/stderr",
         sys.executable, "-c", _WRITER, str(path), synchronous],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    trace = done.stderr
    between = trace[trace.index('"BEGIN-CALLS') : trace.index('"END-CALLS')]
    return len(re.findall(r"\b(?:fsync|fdatasync)\(", between))


@pytest.mark.subprocess
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed: cannot count fsyncs")
def test_each_call_pays_one_fsync_at_full_and_none_at_normal(tmp_path: Path) -> None:
    # Fewer pages than SQLite's auto-checkpoint threshold are written, so every sync seen is a commit's.
    assert _syncs_during_calls(tmp_path / "full.db", "full") == _CALLS
    assert _syncs_during_calls(tmp_path / "normal.db", "normal") == 0
    assert verify(tmp_path / "full.db").status == "ok"


def _call(i: int) -> dict[str, Any]:
    return {
        "request_id": f"r{i}",
        "timestamp": "2026-11-24T00:00:00.000Z",
        "agent_id": "a",
        "agent_version": "v",
        "tier": 0,
        "action": "read_docs",
        "arguments": {},
        "tools_digest": "d",
    }


def test_two_connections_taking_turns_extend_one_chain_without_gaps(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first, second = Ledger(path), Ledger(path)
    try:
        for i in range(30):
            # Each writer's remembered head is stale after the other's commit: it must look again.
            writer = (first, second)[i % 2]
            intent = writer.record_intent(Intent(**_call(i)))
            other = (second, first)[i % 2]
            outcome = Outcome(**_call(i), decision="EXECUTE", confidence=1.0, success=True, intent_id=intent.id)
            other.record_outcome(outcome)
    finally:
        first.close()
        second.close()
    report = verify(path)
    assert report.status == "ok", report.findings
    outcomes = rows(path, order="seq")
    intents = rows(path, "call_intents", order="seq")
    assert [r["seq"] for r in outcomes] == [r["seq"] + 1 for r in intents]
    assert [r["id"] for r in outcomes] == list(range(1, 31))
