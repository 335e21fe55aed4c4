"""One TOML file (PLANNER_MCP_CONFIG) under the environment: env wins, every problem names the setting."""

import json
from pathlib import Path

import pytest

from server import Settings
from server.config.settings import SettingsError
from server.config.variables import VARIABLES
from tests.conftest import API_KEY, rows
from tests.processes import run_cli


def _config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "planner-mcp.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_the_file_sets_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    config = _config(
        tmp_path, 'PLANNER_MCP_MODEL = "llama3.1"\nPLANNER_MCP_LLM_TIMEOUT = 60\nVAULT_SKIP_VERIFY = false\n'
    )
    settings = Settings.from_env({"PLANNER_MCP_CONFIG": str(config), "PLANNER_MCP_LLM_TIMEOUT": "45"})
    assert settings.llm.model == "llama3.1"
    assert settings.llm.timeout_s == 45  # the environment wins


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('PLANNER_MCP_MODLE = "x"', "PLANNER_MCP_MODLE is not a setting; did you mean PLANNER_MCP_MODEL?"),
        ("[llm]\nmodel = 'x'", "llm is not a setting"),
        ("PLANNER_MCP_MODEL = ['a', 'b']", "PLANNER_MCP_MODEL must be a string, a number or a boolean"),
        ("PLANNER_MCP_MODEL = ", "is not valid TOML"),
        ("PLANNER_MCP_LLM_TIMEOUT = 6000", "PLANNER_MCP_LLM_TIMEOUT (set in"),
        ('PLANNER_MCP_LLM_RETRIES = "many"', "PLANNER_MCP_LLM_RETRIES='many' (set in"),
    ],
)
def test_a_bad_file_stops_start_up_with_the_setting_and_the_file_named(tmp_path: Path, text: str, says: str) -> None:
    config = _config(tmp_path, text + "\n")
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"PLANNER_MCP_CONFIG": str(config)})
    assert says in str(error.value) and str(config) in str(error.value)


def test_a_missing_file_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"cannot be read .* unset PLANNER_MCP_CONFIG"):
        Settings.from_env({"PLANNER_MCP_CONFIG": str(tmp_path / "nowhere.toml")})


def test_a_file_holding_a_secret_must_be_private_to_its_owner(tmp_path: Path) -> None:
    shared = _config(tmp_path, f'OPENAI_API_KEY = "{API_KEY}"\n', mode=0o644)
    with pytest.raises(SettingsError, match="other users can read it; `chmod 600") as error:
        Settings.from_env({"PLANNER_MCP_CONFIG": str(shared)})
    assert API_KEY not in str(error.value)
    shared.chmod(0o600)
    assert Settings.from_env({"PLANNER_MCP_CONFIG": str(shared)}).llm.api_key is not None


def test_config_show_prints_every_setting_with_its_source_and_masks_secrets(ledger_path: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, 'PLANNER_MCP_MODEL = "llama3.1"\nOPENAI_BASE_URL = "http://localhost:11434/v1"\n')
    proc = run_cli(ledger_path, "config", "show", PLANNER_MCP_CONFIG=str(config), OPENAI_API_KEY=API_KEY)
    assert proc.returncode == 0, proc.stderr
    assert API_KEY not in proc.stdout + proc.stderr
    lines = {line.lstrip("# ").split(" ")[0]: line for line in proc.stdout.splitlines()[1:]}
    assert set(lines) == {v.name for v in VARIABLES}
    model, key, timeout = lines["PLANNER_MCP_MODEL"], lines["OPENAI_API_KEY"], lines["PLANNER_MCP_LLM_TIMEOUT"]
    assert model.startswith('PLANNER_MCP_MODEL = "llama3.1"') and f"# file {config}:" in model
    assert key.startswith('OPENAI_API_KEY = "********"') and "# env:" in key
    assert timeout.startswith("PLANNER_MCP_LLM_TIMEOUT = 30.0") and "# default:" in timeout
    assert lines["VAULT_TOKEN"].startswith("# VAULT_TOKEN (not set)")
    shown = json.loads(run_cli(ledger_path, "config", "show", "--json", PLANNER_MCP_CONFIG=str(config)).stdout)
    assert shown["config_file"] == str(config)
    by_name = {s["name"]: s for s in shown["settings"]}
    assert by_name["PLANNER_MCP_LEDGER"] == {
        **by_name["PLANNER_MCP_LEDGER"],
        "value": str(ledger_path),
        "source": "env",
    }


def test_a_call_records_in_the_ledger_the_file_names(ledger_path: Path, tmp_path: Path) -> None:
    from_file = tmp_path / "from-file" / "ledger.db"
    config = _config(tmp_path, f'PLANNER_MCP_LEDGER = "{from_file}"\n')
    proc = run_cli(ledger_path, "call", "list_docs", PLANNER_MCP_CONFIG=str(config), PLANNER_MCP_LEDGER="")
    assert proc.returncode == 0, proc.stderr
    assert [r["action"] for r in rows(from_file)] == ["list_docs"] and not ledger_path.exists()


def test_every_setting_the_server_reads_can_be_set_in_the_file() -> None:
    import re

    read = set()
    for module in Path("server").rglob("*.py"):
        read |= set(re.findall(r'(?:get|raw)\("([A-Z][A-Z0-9_]+)"\)', module.read_text()))
    names = read - {"HOME", "LOCALAPPDATA", "XDG_DATA_HOME"}
    assert names and names <= {v.name for v in VARIABLES}, names - {v.name for v in VARIABLES}
