"""`ledger report` on a PostgreSQL ledger: the same page, its figures counted by PostgreSQL, and never the URL's
password in it or in what the command prints."""

from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import API_KEY, rows
from tests.peers.openai_server import FakeOpenAI
from tests.processes import run_cli
from tests.report.ledgers import MARKUP_TOOLS, through_the_gate
from tests.report.page import parse

pytestmark = pytest.mark.subprocess


def test_a_postgresql_ledger_is_reported_with_its_own_figures_and_no_password(
    pg_ledger: str, llm: FakeOpenAI, tmp_path: Path
) -> None:
    config = LLMConfig(api_key=API_KEY, base_url=llm.base_url, model="test-model", timeout_s=5, max_retries=0)
    through_the_gate(Settings(ledger_path=pg_ledger, llm=config), llm)
    out = tmp_path / "report.html"
    proc = run_cli(tmp_path / "unused.db", "ledger", "report", "--html", str(out), PLANNER_MCP_LEDGER=pg_ledger)
    assert proc.returncode == 0, proc.stderr
    password = urlsplit(pg_ledger).password
    html = out.read_text(encoding="utf-8")
    assert password and password not in html + proc.stdout + proc.stderr and ":***@" in proc.stdout
    page = parse(html)
    outcomes = rows(pg_ledger)
    assert {name: int(n) for name, n in page.rows("decisions")} == Counter(row["decision"] for row in outcomes)
    assert [row[:3] + row[5:] for row in page.rows("tokens")] == [["llm-planner-001", "test-model", "2", "565"]]
    assert set(MARKUP_TOOLS) <= {row[0] for row in page.rows("refused-tools")}
    assert [row[4:6] for row in page.rows("escalated")] == [["0.55", "0.70"]]
    assert not (tmp_path / "unused.db").exists()
