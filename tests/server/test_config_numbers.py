"""Every number a setting or a policy holds is finite and in a sane range, or start-up stops naming it and the range.

Each value here once started the server, or stopped it with a traceback: NaN and infinity parse as floats,
and a busy timeout of 1e300 or a cap of 10^30 bytes is no limit at all.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import policy_file
from tests.processes import run_cli

pytestmark = pytest.mark.subprocess

VAULT = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "hvs.not-used-by-config-show"}

ABSURD: list[tuple[str, str, str]] = [
    ("PLANNER_MCP_LEDGER_BUSY_TIMEOUT", "nan", "is not a finite number"),
    ("PLANNER_MCP_LEDGER_BUSY_TIMEOUT", "inf", "is not a finite number"),
    ("PLANNER_MCP_LEDGER_BUSY_TIMEOUT", "1e300", "accepted more than 0 and at most 3600"),
    ("PLANNER_MCP_LEDGER_BUSY_TIMEOUT", "-1", "accepted more than 0 and at most 3600"),
    ("PLANNER_MCP_LEDGER_MAX_MB", "nan", "is not a finite number"),
    ("PLANNER_MCP_LEDGER_MAX_MB", "-inf", "is not a finite number"),
    ("PLANNER_MCP_LEDGER_MAX_MB", "1e300", "accepted more than 0 and at most 16777216"),
    ("PLANNER_MCP_MAX_DOCUMENT_BYTES", str(10**30), "accepted more than 0 and at most 1073741824"),
    ("PLANNER_MCP_MAX_DOCUMENT_BYTES", "1e6", "is not an integer"),
    ("PLANNER_MCP_LLM_TIMEOUT", "nan", "is not a finite number"),
    ("PLANNER_MCP_LLM_TIMEOUT", "-5", "accepted more than 0 and at most 600"),
    ("PLANNER_MCP_LLM_RETRIES", str(10**9), "accepted at least 0 and at most 10"),
    ("PLANNER_MCP_LLM_MAX_TOKENS", "0", "accepted more than 0 and at most 200000"),
    ("PLANNER_MCP_HTTP_PORT", "70000", "accepted at least 1 and at most 65535"),
    ("PLANNER_MCP_HTTP_MAX_CONNECTIONS", "0", "accepted at least 1 and at most 1000000"),
    ("PLANNER_MCP_HTTP_REQUEST_TIMEOUT", "inf", "is not a finite number"),
    ("PLANNER_MCP_VAULT_TIMEOUT", "nan", "is not a finite number"),
    ("PLANNER_MCP_VAULT_RETRIES", "1000", "accepted at least 0 and at most 10"),
    ("PLANNER_MCP_VAULT_CACHE_TTL", "inf", "is not a finite number"),
    ("PLANNER_MCP_VAULT_CACHE_TTL", "-1", "accepted at least 0"),
    ("PLANNER_MCP_VAULT_CACHE_TTL", "1e300", "accepted at least 0 and at most 86400"),
]


def _refused(proc_stderr: str, *parts: str) -> None:
    assert "Traceback" not in proc_stderr
    [line] = proc_stderr.splitlines()
    assert line.startswith("planner-mcp: ") and all(part in line for part in parts), line


@pytest.mark.parametrize(("name", "value", "says"), ABSURD)
def test_an_absurd_number_in_the_environment_stops_start_up_naming_the_setting_and_range(
    tmp_path: Path, name: str, value: str, says: str
) -> None:
    proc = run_cli(tmp_path / "ledger.db", "call", "list_docs", **VAULT, **{name: value})
    assert proc.returncode == 2 and proc.stdout == ""
    _refused(proc.stderr, name, says)
    assert os.listdir(tmp_path) == []  # nothing started: not even the ledger


@pytest.mark.parametrize(
    ("line", "name", "says"),
    [
        ("PLANNER_MCP_LEDGER_BUSY_TIMEOUT = inf", "PLANNER_MCP_LEDGER_BUSY_TIMEOUT", "is not a finite number"),
        ("PLANNER_MCP_LEDGER_MAX_MB = nan", "PLANNER_MCP_LEDGER_MAX_MB", "is not a finite number"),
        ("PLANNER_MCP_LEDGER_MAX_MB = 1e300", "PLANNER_MCP_LEDGER_MAX_MB", "accepted more than 0 and at most"),
        (f"PLANNER_MCP_MAX_DOCUMENT_BYTES = {10**30}", "PLANNER_MCP_MAX_DOCUMENT_BYTES", "at most 1073741824"),
    ],
)
def test_an_absurd_number_in_the_config_file_is_named_with_the_file(
    tmp_path: Path, line: str, name: str, says: str
) -> None:
    config = tmp_path / "planner-mcp.toml"
    config.write_text(line + "\n", encoding="utf-8")
    proc = run_cli(tmp_path / "ledger.db", "config", "show", PLANNER_MCP_CONFIG=str(config))
    assert proc.returncode == 2
    _refused(proc.stderr, name, f"(set in {config})", says)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("confidence_threshold = nan", "confidence_threshold: out of range: accepted at least 0.0 and at most 1.0"),
        ("confidence_threshold = -inf", "confidence_threshold: out of range: accepted at least 0.0 and at most 1.0"),
        ("tier = 9", "tier: out of range: accepted at least 0 and at most 4"),
        (f"daily_token_budget = {2**63}", "daily_token_budget: out of range: accepted more than 0 and at most 2**53"),
    ],
)
def test_a_policy_number_out_of_its_range_is_refused_with_the_range(tmp_path: Path, change: str, says: str) -> None:
    policy = policy_file(tmp_path / "policy.toml")
    field = change.split()[0]
    kept = [line for line in policy.read_text(encoding="utf-8").splitlines() if not line.startswith(f"{field} ")]
    policy.write_text("\n".join([change, *kept]) + "\n", encoding="utf-8")
    proc = run_cli(tmp_path / "ledger.db", "tools", PLANNER_MCP_POLICY=str(policy))
    assert proc.returncode == 2 and proc.stdout == ""
    _refused(proc.stderr, str(policy), says.replace("2**53", str(2**53)))
