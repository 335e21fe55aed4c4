"""Each setting is declared once (`server.config.variables`): the environment, the config file, `config show` and
the README's tables all know exactly the declared settings, and a setting left out of any of them fails here."""

import re
from pathlib import Path

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from server.config.file import layered
from server.config.settings import PART_MODELS, HTTPConfig, LLMConfig, Settings, SettingsError
from server.config.show import effective, render
from server.config.telemetry import TelemetryConfig
from server.config.variables import VARIABLES
from server.config.vault import VaultConfig

README = Path(__file__).parents[2] / "README.md"

NOT_SETTINGS: dict[type[BaseModel], set[str]] = {
    Settings: {"llm", "vault", "http", "telemetry"},
    LLMConfig: {"progress_interval_s", "key_from_vault"},
    HTTPConfig: set(),
    TelemetryConfig: {"otel"},
    VaultConfig: {"token_file", "breaker_failures", "breaker_cooldown_s", "llm_key_name"},
}
"""Fields no variable sets: the nested parts, what the server derives (the key from Vault, the token file) and
fixed limits; OpenTelemetry's switch, read from its own OTEL_* variables."""


def _readme_rows(readme: str) -> list[tuple[list[tuple[str, bool]], str]]:
    """The rows of the README's tables of variables under "## Configuration": the variables each names, each
    with whether it is marked (secret), and the row's default."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    in_table = False
    for line in section.splitlines():
        if line.startswith("| variable | default | meaning |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            cells = line.split("|")
            names = re.findall(r"`([A-Z][A-Z0-9_]*)`( \(secret\))?", cells[1])
            rows.append(([(name, bool(secret)) for name, secret in names], cells[2].strip()))
    return rows


def _readme_variables(readme: str) -> dict[str, bool]:
    return {name: secret for names, _ in _readme_rows(readme) for name, secret in names}


def _unset(field: FieldInfo) -> bool:
    return field.is_required() or field.default in (None, ())


def _as_written(value: object) -> str:
    """A default as the README writes it: `30`, not 30.0; `false`, not False."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "planner-mcp.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_the_readme_tables_list_every_declared_setting_and_mark_the_secrets() -> None:
    documented = _readme_variables(README.read_text(encoding="utf-8"))
    declared = {v.name: v.secret for v in VARIABLES}
    assert sorted(declared.keys() - documented.keys()) == [], "declared, but in no README table"
    assert sorted(documented.keys() - declared.keys()) == [], "in a README table, but not declared"
    assert {n for n, secret in documented.items() if secret} == {n for n, secret in declared.items() if secret}


def test_the_readme_tables_give_each_setting_the_default_its_field_declares() -> None:
    """A row's "—" is a field with no default; one value per variable (`127.0.0.1`, `8765`) is each field's.
    Defaults the README says in words (the bundled data, the system CAs) are not compared, nor the public URL's,
    derived from the host and port."""
    declared = {v.name: PART_MODELS.get(v.part, Settings).model_fields[v.field] for v in VARIABLES}
    compared = 0
    for names, default in _readme_rows(README.read_text(encoding="utf-8")):
        fields = [declared[name] for name, _ in names if name in declared and name != "PLANNER_MCP_HTTP_PUBLIC_URL"]
        values = re.findall(r"`([^`]+)`", default) if re.fullmatch(r"`[^`]+`(, `[^`]+`)*", default) else []
        if default == "—":
            values = ["—"] * len(fields)
        elif len(values) != len(fields):
            continue
        assert ["—" if _unset(f) else _as_written(f.default) for f in fields] == values, names
        compared += len(fields)
    assert compared >= 30


def test_every_field_a_variable_could_set_is_declared_once_and_exists() -> None:
    for model, not_settings in NOT_SETTINGS.items():
        fields = [v.field for v in VARIABLES if PART_MODELS.get(v.part, Settings) is model]
        assert len(fields) == len(set(fields)), f"{model.__name__}: a field set by two variables"
        assert set(fields) | not_settings == set(model.model_fields), model.__name__
        assert not set(fields) & not_settings, model.__name__
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))


def test_the_config_file_accepts_every_declared_name_and_no_other(tmp_path: Path) -> None:
    every = _config(tmp_path, "".join(f'{v.name} = ""\n' for v in VARIABLES))  # empty: set, and read as unset
    assert Settings.from_env({"HOME": str(tmp_path), "PLANNER_MCP_CONFIG": str(every)}) is not None
    other = _config(tmp_path, 'PLANNER_MCP_UNDECLARED = "x"\n')
    with pytest.raises(SettingsError, match="PLANNER_MCP_UNDECLARED is not a setting"):
        Settings.from_env({"HOME": str(tmp_path), "PLANNER_MCP_CONFIG": str(other)})


def test_config_show_shows_exactly_the_declared_settings_in_their_order(tmp_path: Path) -> None:
    env = layered({"HOME": str(tmp_path)})
    shown = effective(Settings.from_env(env), env)
    assert [(s["name"], s["meaning"]) for s in shown] == [(v.name, v.meaning) for v in VARIABLES]


def _everything_set(tmp_path: Path) -> dict[str, str]:
    """An environment that sets as many settings as can be set together, none to its default."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until the first TLS handshake\n", encoding="utf-8")
    (tmp_path / "certs").mkdir()
    return {
        "HOME": str(tmp_path),
        "PLANNER_MCP_LEDGER": str(tmp_path / "ledger.db"),
        "PLANNER_MCP_LEDGER_KEY_FILE": str(tmp_path / "ledger.key"),
        "PLANNER_MCP_LEDGER_SYNC": "normal",
        "PLANNER_MCP_LEDGER_BUSY_TIMEOUT": "2.5",
        "PLANNER_MCP_LEDGER_MAX_MB": "0.5",
        "PLANNER_MCP_INVENTORY": "lab",
        "PLANNER_MCP_POLICY": str(tmp_path / "policy.toml"),
        "PLANNER_MCP_AGENTS": str(tmp_path / "agents.toml"),
        "PLANNER_MCP_AGENT": "ci-reader",
        "PLANNER_MCP_MAX_DOCUMENT_BYTES": "1000",
        "OPENAI_API_KEY": "sk-test-round-trip",
        "OPENAI_BASE_URL": "http://localhost:11434/v1",
        "PLANNER_MCP_MODEL": "llama3.1",
        "PLANNER_MCP_LLM_TIMEOUT": "12.5",
        "PLANNER_MCP_LLM_RETRIES": "4",
        "PLANNER_MCP_LLM_MAX_TOKENS": "800",
        "PLANNER_MCP_LLM_STRUCTURED": "off",
        "VAULT_ADDR": "https://vault.internal:8200",
        "VAULT_TOKEN": "hvs.round-trip",
        "VAULT_ROLE_ID": "role",
        "VAULT_SECRET_ID": "secret",
        "VAULT_NAMESPACE": "team",
        "VAULT_CACERT": str(ca),
        "VAULT_CAPATH": str(tmp_path / "certs"),
        "VAULT_SKIP_VERIFY": "true",
        "PLANNER_MCP_VAULT_MOUNT": "kv",
        "PLANNER_MCP_VAULT_APPROLE_MOUNT": "auth-approle",
        "PLANNER_MCP_VAULT_TIMEOUT": "3",
        "PLANNER_MCP_VAULT_RETRIES": "1",
        "PLANNER_MCP_VAULT_CACHE_TTL": "0",
        "PLANNER_MCP_HTTP_HOST": "0.0.0.0",
        "PLANNER_MCP_HTTP_PORT": "9000",
        "PLANNER_MCP_HTTP_TOKEN": "a-static-token-of-some-length",
        "PLANNER_MCP_OAUTH_ISSUER": "https://issuer.example",
        "PLANNER_MCP_OAUTH_AUDIENCE": "planner",
        "PLANNER_MCP_OAUTH_JWKS_URL": "https://issuer.example/jwks",
        "PLANNER_MCP_HTTP_PUBLIC_URL": "https://planner.example/mcp",
        "PLANNER_MCP_HTTP_ALLOWED_ORIGINS": "https://a.example,https://b.example",
        "PLANNER_MCP_HTTP_STATELESS": "true",
        "PLANNER_MCP_HTTP_MAX_CONNECTIONS": "64",
        "PLANNER_MCP_HTTP_REQUEST_TIMEOUT": "4",
        "PLANNER_MCP_METRICS_PORT": "127.0.0.2:9464",
    }


def test_config_shows_output_copied_into_the_file_is_the_same_configuration(tmp_path: Path) -> None:
    """Each declaration reads back what `config show` prints of it: its parsing and its showing agree."""
    env = layered(_everything_set(tmp_path))
    settings = Settings.from_env(env)
    before = {s["name"]: s["value"] for s in effective(settings, env)}
    copied = layered(
        {"HOME": str(tmp_path), "PLANNER_MCP_CONFIG": str(_config(tmp_path, render(settings, env, as_json=False)))}
    )
    after = effective(Settings.from_env(copied), copied)
    assert {s["name"]: s["value"] for s in after} == before
    from_file = {s["name"] for s in after if s["source"] == f"file {copied.file}"}
    assert from_file == {name for name, value in before.items() if value is not None}
    not_round_tripped = {v.name for v in VARIABLES} - from_file - {"PLANNER_MCP_DATA"}  # unused when Vault is set
    assert not_round_tripped == set(), "give each a value in _everything_set, so its parsing and showing are tested"


def test_a_variable_whose_field_holds_a_credential_is_declared_secret() -> None:
    """So `config show` masks it and a config file holding it must be private: both follow `secret`."""
    for variable in VARIABLES:
        field = PART_MODELS.get(variable.part, Settings).model_fields[variable.field]
        assert ("SecretStr" in str(field.annotation)) == variable.secret, variable.name
