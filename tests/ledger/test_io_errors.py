"""An I/O error at any fsync: the write fails, is not retried, loses nothing already recorded, and the
ledger reopens cleanly for the next one (SQLite's own method: fail at point k, for every k)."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ledger import verify
from tests.conftest import rows

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed: cannot inject EIO"),
]

_CALLS = 6
_WRITER = textwrap.dedent(
    f"""
    import logging, sys
    from pathlib import Path
    from ledger import Intent, Ledger, LedgerError, Outcome
    logging.basicConfig(level=logging.WARNING)
    ledger = Ledger(Path(sys.argv[1]))
    for i in range({_CALLS}):
        call = dict(request_id=f"r{{i}}", timestamp="2026-11-24T00:00:00.000Z", agent_id="a", agent_version="v",
                    tier=0, action="read_docs", arguments={{}}, tools_digest="d")
        try:
            intent = ledger.record_intent(Intent(**call))
            ledger.record_outcome(Outcome(**call, decision="EXECUTE", confidence=1.0, success=True,
                                          intent_id=intent.id))
            print("ok", call["request_id"], flush=True)
        except LedgerError as exc:
            print("failed", call["request_id"], exc.reason, flush=True)
    ledger.close()
    """
)


def _run_failing_at(path: Path, k: int) -> tuple[list[list[str]], str]:
    """Run the writer with the k-th fsync (or fdatasync) failing with EIO; its answers and its log."""
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync,fdatasync",
         "-e", f"inject=fsync,fdatasync:error=EIO:when={k}", sys.executable, "-c", _WRITER, str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [line.split() for line in proc.stdout.splitlines()], proc.stderr


def test_an_fsync_failing_at_any_point_fails_one_write_and_the_ledger_carries_on(tmp_path: Path) -> None:
    failed_writes = 0
    for k in range(1, 25):
        path = tmp_path / f"ledger-{k}.db"
        lines, log = _run_failing_at(path, k)
        assert len(lines) == _CALLS, k  # every call got an answer: nothing crashed, nothing hung
        failed = [line for line in lines if line[0] == "failed"]
        acknowledged = {line[1] for line in lines if line[0] == "ok"}
        assert all(line[2] == "io" for line in failed), (k, failed)  # named as an I/O error, not vaguer
        assert len(failed) <= 1, k  # one failing fsync fails one write: not retried into a success or two errors
        failed_writes += len(failed)
        if failed and lines[-1][0] == "ok":
            # After the error the connection was dropped, and the next write reopened and checked the file.
            assert "Reopened the ledger" in log and "integrity check ok" in log, (k, log)
        if not path.exists():
            continue  # the error came before the file was created
        report = verify(path)
        assert report.status in ("ok", "incomplete"), (k, [str(f) for f in report.findings])
        assert acknowledged <= {r["request_id"] for r in rows(path)}, k  # nothing acknowledged was lost
    assert failed_writes >= 10  # so the invariants above were tested where it matters: on failed writes
