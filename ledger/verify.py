"""`ledger verify`: re-derive every hash and link of the chain and name what does not hold.

What a chain alone can and cannot show: a changed, deleted, inserted or reordered row breaks it; deleting
the newest rows, or rewriting the whole chain, does not, unless the chain is keyed (HMAC, key kept
elsewhere) or checked against a checkpoint (`ledger checkpoint`) kept elsewhere. Both are supported.
"""

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ledger.append import hash_at
from ledger.chain import GENESIS, Hasher, algorithm, storage_problems
from ledger.engines import locate
from ledger.errors import LedgerError
from ledger.metrics import derived, drift
from ledger.reader import ChainRow, chained_rows, chained_tables, has_table, unchained_rows
from ledger.records import utc_now
from ledger.schema import APPEND_ONLY, Difference
from ledger.storage import Conn, Location, Storage

__all__ = ["EXIT_CODES", "INCOMPLETE", "Checkpoint", "Finding", "Report", "checkpoint", "load_checkpoints", "verify"]

Kind = Literal[
    "corrupt", "schema", "unprotected", "altered", "missing", "inserted", "reordered", "truncated", "rewritten",
    "downgraded", "drift", "unverified", "incomplete",
]  # fmt: skip
Status = Literal["ok", "incomplete", "unverified", "tampered"]

EXIT_CODES: dict[Status, int] = {"ok": 0, "tampered": 1, "incomplete": 3, "unverified": 4}
"""`planner-mcp ledger verify` exits with these; 2 is a usage error, as for every command."""

_NOT_TAMPERING: frozenset[Kind] = frozenset({"incomplete", "unverified"})
_MAX_LOOKUPS = 50
_PROGRESS_EVERY = 10_000
"""How many rows `verify` checks between two calls of its `progress`."""


@dataclass(frozen=True)
class Finding:
    kind: Kind
    seq: int | None
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<11} {'' if self.seq is None else f'seq {self.seq}: '}{self.detail}"


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment: kept somewhere the ledger's writers cannot reach, it anchors the chain."""

    seq: int
    hash: str
    at: str

    def to_json(self) -> str:
        return json.dumps({"ledger": "planner-mcp", "seq": self.seq, "hash": self.hash, "at": self.at})

    @classmethod
    def parse_lines(cls, text: str) -> list["Checkpoint"]:
        found = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                found.append(cls(seq=int(raw["seq"]), hash=str(raw["hash"]), at=str(raw.get("at", ""))))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"line {number} is not a checkpoint printed by `ledger checkpoint`: {exc}") from None
        return found


@dataclass
class Report:
    path: Path | str
    """The ledger's place as messages show it: a file's path, or a URL without its password."""
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    keyed_rows: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def status(self) -> Status:
        kinds = {f.kind for f in self.findings}
        if kinds - _NOT_TAMPERING:
            return "tampered"
        if "unverified" in kinds:
            return "unverified"
        return "incomplete" if "incomplete" in kinds else "ok"

    def kinds(self) -> set[Kind]:
        return {f.kind for f in self.findings}


@dataclass
class _Walk:
    """One pass over the rows in sequence order, noting what each row says about the chain around it."""

    hasher: Hasher
    report: Report
    conn: Conn
    previous: ChainRow | None = None
    moves: list[tuple[int, int]] = field(default_factory=list)  # (seq now, seq the row was written as)
    mismatched: list[int] = field(default_factory=list)
    lookups: int = 0
    last_delta: int = 0
    downgraded: bool = False
    unverified: bool = False

    def add(self, row: ChainRow) -> None:
        report, previous = self.report, self.previous
        report.rows += 1
        expected_seq = previous.seq + 1 if previous else 1
        explained = False
        if previous is not None and row.seq == previous.seq:
            report.findings.append(
                Finding("inserted", row.seq, f"two rows claim this place ({_name(previous)} and {_name(row)})")
            )
            explained = True
        elif row.seq > expected_seq:
            gone = f"{expected_seq}" if row.seq - expected_seq == 1 else f"{expected_seq} to {row.seq - 1}"
            report.findings.append(Finding("missing", expected_seq, f"row(s) {gone} are gone from the chain"))
            explained = True
        self._check_content(row)
        if row.row_hash is not None and algorithm(str(row.row_hash)) == "hmac-sha256":
            report.keyed_rows += 1
        elif report.keyed_rows and not self.downgraded:
            self.downgraded = True
            report.findings.append(
                Finding("downgraded", row.seq, "an unkeyed row follows keyed rows: it was written without the key")
            )
        link = previous.row_hash if previous else GENESIS
        moved = bool(self.moves) and self.moves[-1][0] in (row.seq, previous.seq if previous else None)
        if row.prev_hash != link and not explained and not moved:
            report.findings.append(Finding("altered", row.seq, "its link to the row before it is broken"))
        self.previous = row

    def _check_content(self, row: ChainRow) -> None:
        if problems := storage_problems(row.table, row.row):
            # Never written by the ledger: a value SQLite would hand back as the 0 or 1 a hash was taken of.
            self.report.findings.append(Finding("altered", row.seq, "; ".join(problems)))
            return
        matches = self._matches(row, row.seq)
        if matches is None:
            if not self.unverified:
                self.unverified = True
                self.report.findings.append(
                    Finding("unverified", row.seq, "keyed rows cannot be checked without the key "
                            "(PLANNER_MCP_LEDGER_KEY_FILE)")
                )  # fmt: skip
            return
        if matches:
            return
        written_as = self._written_as(row)
        if written_as is None:
            self.mismatched.append(row.seq)
        else:
            self.moves.append((row.seq, written_as))
            self.last_delta = written_as - row.seq

    def _matches(self, row: ChainRow, seq: int) -> bool | None:
        if not isinstance(row.row_hash, str) or not isinstance(row.prev_hash, str):
            return False
        return self.hasher.matches(row.row_hash, row.table, row.prev_hash, {**row.row, "seq": seq})

    def _written_as(self, row: ChainRow) -> int | None:
        """The place a row was hashed for, when it is intact but stands somewhere else now."""
        candidates = [row.seq + self.last_delta] if self.last_delta else []
        candidates += [row.seq - 1, row.seq + 1]
        if self.lookups < _MAX_LOOKUPS and isinstance(row.prev_hash, str):
            self.lookups += 1
            if row.prev_hash == GENESIS:
                candidates.append(1)
            elif (linked := _seq_of(self.conn, row.prev_hash)) is not None:
                candidates.append(linked + 1)
        return next((c for c in candidates if c != row.seq and c > 0 and self._matches(row, c)), None)

    def finish(self) -> None:
        report = self.report
        if self.previous is not None:
            report.head_seq = self.previous.seq
            report.head_hash = str(self.previous.row_hash)
        self._name_moves()
        self._name_mismatches()

    def _name_moves(self) -> None:
        moved = dict(self.moves)
        runs: list[list[tuple[int, int]]] = []
        for now, was in self.moves:
            if moved.get(was) == now:
                if now < was:
                    self.report.findings.append(
                        Finding("reordered", now, f"this row and the one at seq {was} were swapped")
                    )
                continue
            if runs and runs[-1][-1][0] == now - 1 and runs[-1][-1][0] - runs[-1][-1][1] == now - was:
                runs[-1].append((now, was))
            else:
                runs.append([(now, was)])
        for run in runs:
            first_now, first_was = run[0]
            shift, count = first_now - first_was, len(run)
            if shift > 0:
                self.report.findings.append(
                    Finding("inserted", first_was, f"{shift} row(s) were inserted here; the {count} row(s) after "
                            f"them were renumbered to make room")
                )  # fmt: skip
            else:
                self.report.findings.append(
                    Finding("missing", first_now, f"{-shift} row(s) were deleted here and the {count} row(s) after "
                            "them renumbered to close the gap")
                )  # fmt: skip

    def _name_mismatches(self) -> None:
        seqs = self.mismatched
        if not seqs:
            return
        # A run of rows that fail their hashes up to the head, each still linked to the one before, is a chain
        # someone recomputed without the key: only a keyed chain (or a checkpoint) can show that.
        run_start = len(seqs) - 1
        while run_start > 0 and seqs[run_start - 1] == seqs[run_start] - 1:
            run_start -= 1
        if len(seqs) - run_start > 1 and seqs[-1] == self.report.head_seq and self.hasher.keyed:
            self.report.findings.append(
                Finding("rewritten", seqs[run_start], f"rows {seqs[run_start]} to {seqs[-1]} are linked to each "
                        "other but do not match their hashes under the key: the chain was recomputed without it")
            )  # fmt: skip
            seqs = seqs[:run_start]
        for seq in seqs:
            self.report.findings.append(Finding("altered", seq, "its content does not match its hash"))


def _name(row: ChainRow) -> str:
    return f"{row.table} id {row.row.get('id')}"


def _find(conn: Conn, column: str, where: str, value: object) -> object | None:
    """`column` of the chained row whose `where` column is `value`, in whichever table holds it."""
    for table in chained_tables(conn):
        found: tuple[object] | None = conn.execute(
            f"SELECT {column} FROM {table} WHERE {where} = ?", (value,)
        ).fetchone()
        if found is not None:
            return found[0]
    return None


def _seq_of(conn: Conn, row_hash: str) -> int | None:
    seq = _find(conn, "seq", "row_hash", row_hash)  # no index on row_hash: a scan, done only for broken links
    return seq if isinstance(seq, int) else None


def verify(
    location: Location | Storage,
    *,
    key: bytes | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Check the ledger at `location`: the engine's own integrity check, the append-only triggers, every hash and
    link, every checkpoint given, and calls whose intent has no outcome. Raises `LedgerError` when it cannot
    be read. `progress` is told the rows checked so far, every `_PROGRESS_EVERY` rows, for a person watching."""
    storage = locate(location) if isinstance(location, Path | str) else location
    report = Report(location if isinstance(location, Path) else storage.where)
    with storage.snapshot() as conn:
        try:
            problems = storage.integrity(conn)
        except storage.errors as exc:
            report.findings.append(Finding("corrupt", None, f"the file cannot be read as a database: {exc}"))
            return report
        if problems:
            report.findings.append(
                Finding("corrupt", None, "the file fails SQLite's integrity check: " + "; ".join(problems))
            )
        report.findings.extend(_schema_findings(storage.recorded_differences(conn)))
        report.findings.extend(
            Finding("inserted", None, f"{_name(row)} has no place in the chain: it was written outside the ledger")
            for row in unchained_rows(conn)
        )
        walk = _Walk(Hasher(key), report, conn)
        try:
            for row in chained_rows(conn):
                walk.add(row)
                if progress is not None and report.rows % _PROGRESS_EVERY == 0:
                    progress(report.rows)
        except storage.errors as exc:
            report.findings.append(
                Finding("corrupt", walk.previous.seq if walk.previous else None, f"unreadable: {exc}")
            )
        walk.finish()
        report.findings.extend(_checkpoint_findings(conn, report, checkpoints))
        report.findings.extend(_metric_findings(conn))
        report.findings.extend(_orphans(conn))
        report.findings.extend(_incomplete(conn))
    report.findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
    return report


def _schema_findings(found: list[Difference]) -> Iterator[Finding]:
    """The schema against the one the migrations this ledger records would make: an append-only trigger
    dropped or emptied leaves the tables `unprotected`; anything else added or changed is `schema`."""
    for difference in found:
        if difference.unprotects:
            table, verb = APPEND_ONLY[difference.name]
            yield Finding(
                "unprotected", None, f"the trigger that refuses {verb} on {table} is gone or changed: "
                f"{difference.problem}",
            )  # fmt: skip
        else:
            yield Finding("schema", None, difference.problem)


def _checkpoint_findings(conn: Conn, report: Report, checkpoints: Iterable[Checkpoint]) -> Iterator[Finding]:
    for cp in checkpoints:
        if cp.seq > report.head_seq:
            yield Finding(
                "truncated", report.head_seq + 1,
                f"the chain ends at seq {report.head_seq}, but the checkpoint of {cp.at} saw it reach seq {cp.seq}",
            )  # fmt: skip
            continue
        stored = GENESIS if cp.seq == 0 else hash_at(conn, cp.seq, chained_tables(conn))
        if stored != cp.hash:
            yield Finding(
                "rewritten", cp.seq, f"this row's hash is not the one the checkpoint of {cp.at} recorded: the chain "
                "up to here was rewritten",
            )  # fmt: skip


def _metric_findings(conn: Conn) -> Iterator[Finding]:
    """agent_metrics sits outside the chain: every counter that disagrees with the outcomes is named. (Deleting
    the newest rows and the counts with them, or the WAL after a crash, leaves no drift: checkpoints see that.)"""
    if has_table(conn, "agent_metrics"):
        for problem in drift(conn, derived(conn)):
            yield Finding("drift", None, problem)


def _orphans(conn: Conn) -> Iterator[Finding]:
    (orphans,) = conn.execute(
        "SELECT count(*) FROM agent_actions a WHERE a.intent_id IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM call_intents i WHERE i.id = a.intent_id)"
    ).fetchone()
    if orphans:
        yield Finding("missing", None, f"{orphans} outcome(s) refer to intents that are not in the ledger")


INCOMPLETE = (
    "SELECT i.seq, i.request_id, i.action FROM call_intents i"
    " WHERE NOT EXISTS (SELECT 1 FROM agent_actions a WHERE a.request_id = i.request_id AND a.intent_id = i.id)"
    " ORDER BY i.seq"
)
"""Intents without their outcome. An outcome is found by its request id (unique, indexed), then its intent id."""


def _incomplete(conn: Conn) -> Iterator[Finding]:
    for seq, request_id, action in conn.execute(INCOMPLETE):
        yield Finding(
            "incomplete", seq, f"{action} (request {request_id}) has an intent but no outcome: the server stopped "
            "during the call, the outcome could not be written (the ledger was full or unwritable; the caller got "
            "an error, not the result), or the call is still running",
        )  # fmt: skip


def checkpoint(location: Location | Storage, *, key: bytes | None = None) -> tuple[Checkpoint | None, Report]:
    """The head to anchor elsewhere, after a full verify: a checkpoint of a broken chain, or of keyed rows
    checked without their key, would vouch for what nobody checked."""
    report = verify(location, key=key)
    if report.status in ("tampered", "unverified"):
        return None, report
    return Checkpoint(seq=report.head_seq, hash=report.head_hash, at=utc_now()), report


def load_checkpoints(path: Path) -> list[Checkpoint]:
    try:
        return Checkpoint.parse_lines(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LedgerError(f"cannot read the checkpoint file {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise LedgerError(f"the checkpoint file {path} is not usable: {exc}") from exc
