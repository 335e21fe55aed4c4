"""Authentication by Vault's conventions: VAULT_TOKEN, ~/.vault-token, AppRole; renewal and re-login."""

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from server import Settings
from server.config.settings import SettingsError
from tests.conftest import call, call_once, connect, rows
from tests.peers.vault_server import FakeVault
from tests.vault_seed import ROLE_ID, RUNBOOK, SECRET_ID, TOKEN

pytestmark = pytest.mark.anyio


def _secrets_absent(ledger_path: Path, outputs: list[dict[str, object]], *secrets: str) -> None:
    raw = b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())
    for secret in secrets:
        assert secret.encode() not in raw
        assert secret not in str(outputs)


async def test_without_vault_token_the_cli_token_file_is_used(
    vault_settings: Callable[..., Settings], vault: FakeVault, tmp_path: Path
) -> None:
    token_file = tmp_path / ".vault-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    _, output = await call_once(
        vault_settings({"token": None, "token_file": token_file}), "read_docs", {"name": "vm-provisioning"}
    )
    assert output["data"]["content"] == RUNBOOK
    assert vault.requests_to("secret/data/docs/")[0].headers["x-vault-token"] == TOKEN


async def test_a_root_token_in_the_token_file_is_refused_and_nothing_is_read(
    vault_settings: Callable[..., Settings], vault: FakeVault, tmp_path: Path
) -> None:
    vault.add_token("root-token-opaque-0000001", policies=["root"])
    token_file = tmp_path / ".vault-token"
    token_file.write_text("root-token-opaque-0000001", encoding="utf-8")
    _, output = await call_once(
        vault_settings({"token": None, "token_file": token_file}), "read_docs", {"name": "vm-provisioning"}
    )
    assert output["error"]["type"] == "VAULT_AUTH_FAILED"
    assert "root token" in output["error"]["message"]
    assert vault.requests_to("secret/") == []


@pytest.mark.parametrize("mode", [0o622, 0o660])
async def test_a_token_file_others_could_write_is_refused_and_nothing_is_read(
    vault_settings: Callable[..., Settings], vault: FakeVault, tmp_path: Path, mode: int
) -> None:
    token_file = tmp_path / ".vault-token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(mode)  # someone else could have put their own token here, and their runbooks behind it
    _, output = await call_once(
        vault_settings({"token": None, "token_file": token_file}), "read_docs", {"name": "vm-provisioning"}
    )
    assert output["error"]["type"] == "VAULT_AUTH_FAILED"
    assert f"chmod go-w {token_file}" in output["error"]["message"]
    assert vault.requests_to("secret/") == [] and vault.requests_to("auth/") == []


async def test_a_root_token_in_vault_token_works_with_a_warning(
    vault_settings: Callable[..., Settings], vault: FakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    vault.add_token("root-token-opaque-0000002", policies=["root"])
    _, output = await call_once(
        vault_settings({"token": "root-token-opaque-0000002"}), "read_docs", {"name": "vm-provisioning"}
    )
    assert output["data"]["content"] == RUNBOOK
    assert any("root token" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert "root-token-opaque-0000002" not in caplog.text


async def test_approle_logs_in_and_its_token_never_leaves(
    vault_settings: Callable[..., Settings], vault: FakeVault, ledger_path: Path
) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID, policies=["planner"])
    settings = vault_settings({"token": None, "role_id": ROLE_ID, "secret_id": SECRET_ID})
    async with connect(settings) as client:
        _, output = await call(client, "read_docs", {"name": "vm-provisioning"})
        _, echoed = await call(client, "read_docs", {"name": "x", "echo": vault.issued_tokens[0]})
    assert output["data"]["content"] == RUNBOOK
    [login] = vault.requests_to("auth/approle/login")
    assert login.json == {"role_id": ROLE_ID, "secret_id": SECRET_ID}
    _secrets_absent(ledger_path, [output, echoed], SECRET_ID, *vault.issued_tokens)


async def test_an_expired_approle_token_is_replaced_by_logging_in_again(
    vault_settings: Callable[..., Settings], vault: FakeVault, ledger_path: Path
) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID, policies=["planner"])
    async with connect(vault_settings({"token": None, "role_id": ROLE_ID, "secret_id": SECRET_ID})) as client:
        await call(client, "read_docs", {"name": "vm-provisioning"})
        vault.expire(vault.issued_tokens[0])
        result, output = await call(client, "read_docs", {"name": "backup-restore"})
    assert not result.is_error, output["error"]
    assert len(vault.issued_tokens) == 2
    assert vault.requests_to("secret/data/docs/backup-restore")[-1].headers["x-vault-token"] == vault.issued_tokens[1]
    assert [r["success"] for r in rows(ledger_path)] == [1, 1]


async def test_an_expired_vault_token_without_approle_is_a_clear_auth_error(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    async with connect(vault_settings()) as client:
        await call(client, "read_docs", {"name": "vm-provisioning"})
        vault.expire(TOKEN)
        _, expired = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert expired["error"]["type"] == "VAULT_AUTH_FAILED"
    assert "VAULT_TOKEN" in expired["error"]["message"]
    assert "AppRole" in expired["error"]["recommended_action"]


async def test_an_expired_vault_token_falls_back_to_approle_when_configured(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID, policies=["planner"])
    async with connect(vault_settings({"role_id": ROLE_ID, "secret_id": SECRET_ID})) as client:
        await call(client, "read_docs", {"name": "vm-provisioning"})
        vault.expire(TOKEN)
        result, _ = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert not result.is_error and len(vault.issued_tokens) == 1


async def test_a_token_close_to_expiry_is_renewed_before_it_is_used(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.add_token("short-lived-token-opaque-01", policies=["planner"], ttl=3600)
    vault.age("short-lived-token-opaque-01", 3000)  # 600 s left of 3600: less than a third
    result, _ = await call_once(
        vault_settings({"token": "short-lived-token-opaque-01"}), "read_docs", {"name": "vm-provisioning"}
    )
    assert not result.is_error
    assert len(vault.requests_to("auth/token/renew-self")) == 1


async def test_wrong_approle_credentials_and_no_credentials_are_named(
    vault_settings: Callable[..., Settings], vault: FakeVault, tmp_path: Path
) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID)
    wrong = vault_settings({"token": None, "role_id": ROLE_ID, "secret_id": "wrong-secret-id-00000"})
    none = vault_settings({"token": None, "token_file": tmp_path / "absent"})
    _, refused = await call_once(wrong, "read_docs", {"name": "vm-provisioning"})
    _, missing = await call_once(none, "read_docs", {"name": "vm-provisioning"})
    assert refused["error"]["type"] == missing["error"]["type"] == "VAULT_AUTH_FAILED"
    assert "AppRole" in refused["error"]["message"]
    assert "VAULT_TOKEN" in missing["error"]["recommended_action"]
    assert "wrong-secret-id-00000" not in str(refused)


def test_vault_settings_follow_vaults_environment_variables(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    env = {
        "HOME": str(tmp_path),
        "VAULT_ADDR": "https://vault.internal:8200/",
        "VAULT_TOKEN": TOKEN,
        "VAULT_NAMESPACE": "ops",
        "VAULT_CACERT": str(ca),
        "PLANNER_MCP_VAULT_MOUNT": "kv/",
        "PLANNER_MCP_VAULT_CACHE_TTL": "0",
    }
    settings = Settings.from_env(env)
    vault = settings.vault
    assert vault is not None
    assert (vault.addr, vault.namespace, vault.mount, vault.cache_ttl_s) == (
        "https://vault.internal:8200",
        "ops",
        "kv",
        0,
    )
    assert vault.token == SecretStr(TOKEN) and vault.verify == str(ca) and not vault.skip_verify
    assert vault.token_file == tmp_path / ".vault-token"
    assert settings.llm.key_from_vault and settings.llm.effective_base_url == "https://openrouter.ai/api/v1"
    assert Settings.from_env({"HOME": str(tmp_path)}).vault is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VAULT_ADDR": "vault:8200"}, "VAULT_ADDR"),
        ({"VAULT_ADDR": "https://v", "VAULT_CACERT": "/no/such/ca.pem"}, "VAULT_CACERT"),
        ({"VAULT_ADDR": "https://v", "VAULT_SKIP_VERIFY": "maybe"}, "VAULT_SKIP_VERIFY"),
        ({"VAULT_ADDR": "https://v", "VAULT_ROLE_ID": "r"}, "VAULT_SECRET_ID"),
        ({"VAULT_ADDR": "https://v", "PLANNER_MCP_VAULT_MOUNT": "../sys"}, "PLANNER_MCP_VAULT_MOUNT"),
        ({"VAULT_ADDR": "https://v", "PLANNER_MCP_VAULT_TIMEOUT": "soon"}, "PLANNER_MCP_VAULT_TIMEOUT"),
    ],
)
def test_bad_vault_settings_name_the_variable_to_fix(env: dict[str, str], named: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"HOME": str(tmp_path), **env})
