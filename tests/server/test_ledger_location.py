"""PLANNER_MCP_LEDGER names a SQLite file or a PostgreSQL URL, and nothing else."""

from pathlib import Path

import pytest

from server import Settings
from server.config.settings import SettingsError


def test_a_postgresql_url_is_kept_as_a_url_and_a_path_as_a_path(tmp_path: Path) -> None:
    url = "postgresql://planner:s3cret-pw@db.example.com:5432/audit?sslmode=verify-full"
    shared = Settings.from_env({"PLANNER_MCP_LEDGER": url, "HOME": str(tmp_path)})
    assert shared.ledger_path == url and shared.ledger_url == url
    assert Settings.from_env({"PLANNER_MCP_LEDGER": "postgres://db/audit", "HOME": str(tmp_path)}).ledger_url
    local = Settings.from_env({"PLANNER_MCP_LEDGER": str(tmp_path / "l.db"), "HOME": str(tmp_path)})
    assert local.ledger_path == tmp_path / "l.db" and local.ledger_url is None
    assert Settings(ledger_path="relative/ledger.db").ledger_path == Path("relative/ledger.db")


@pytest.mark.parametrize("value", ["mysql://db/audit", "sqlite:///tmp/ledger.db", "https://db.example.com/audit"])
def test_a_url_of_another_engine_is_refused_by_name_rather_than_taken_for_a_file(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"PLANNER_MCP_LEDGER": value, "HOME": str(tmp_path)})
    scheme = value.split("://")[0]
    assert "PLANNER_MCP_LEDGER" in str(raised.value) and f"{scheme}://" in str(raised.value)
    assert "postgresql://" in str(raised.value)
