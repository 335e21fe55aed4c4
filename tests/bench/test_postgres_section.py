"""The PostgreSQL section counts what it says: appends are rows really written to a PostgreSQL ledger and verified
there, and a section that could not run says why instead of passing for a figure."""

from bench.ledger_load import one_process, shared_file
from bench.report import render
from bench.targets import judge
from tests.conftest import rows

_SKIPPED = "PostgreSQL is not installed: initdb not found"


def test_appends_on_postgresql_are_rows_really_written_by_every_writer_and_verified(pg_ledger: str) -> None:
    result = shared_file(pg_ledger, processes=3, calls=10)
    assert (result["appends"], result["rows_written"], result["lost"]) == (60, 60, 0)
    assert result["verify"] == "ok" and result["per_second"] > 0
    assert one_process(pg_ledger, 5)["appends"] == 10
    outcomes = rows(pg_ledger)
    assert len(outcomes) == len({r["request_id"] for r in outcomes}) == 35


def test_a_section_without_postgresql_says_why_and_its_targets_are_not_run() -> None:
    results = {"postgres": {"skipped": _SKIPPED}}
    verdicts = [v for v in judge(results) if v.target.path[0] == "postgres"]
    assert len(verdicts) == 3 and all(v.value is None and not v.ok for v in verdicts)
    table = render(results, judge(results))
    assert f"skipped: {_SKIPPED}" in table
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    assert all(lines[v.target.name].endswith("not run") for v in verdicts)
