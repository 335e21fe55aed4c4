"""A user and password written into VAULT_ADDR or OPENAI_BASE_URL are used, as HTTP Basic credentials, and never
shown: not in the errors a client gets when the peer fails, the ledger's files, `read_logs`, `doctor`,
`config show`, nor the log at DEBUG (where the HTTP libraries print the URLs they request)."""

import base64
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from server import Settings
from server.config.settings import LLMConfig
from server.vault import VaultConfig
from tests.conftest import call, connect
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.vault_server import FakeVault
from tests.processes import run_cli
from tests.resilience.canaries import leaks
from tests.vault_seed import SHIPPED_POLICY, parse_hcl

pytestmark = pytest.mark.anyio

TOKEN = "hvs.CAESIuserinfoTEST0123456789abcdefgh"
LLM_KEY = "sk-test-userinfo-0123456789abcdef"
VAULT_PASSWORD = "c4naryVaultAddrPass"
LLM_PASSWORD = "c4nary:LLM@base/pass"  # `:`, `@` and `/` percent-encoded in the URL, as they must be
ENCODED_LLM_PASSWORD = "c4nary%3ALLM%40base%2Fpass"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        server.add_policy("planner", parse_hcl(SHIPPED_POLICY.read_text(encoding="utf-8")))
        server.add_token(TOKEN, policies=["planner"], ttl=3600)
        server.put("docs/backup-restore", {"content": "# Backup\n\nRun vzdump 103.\n"})
        yield server


def _urls(vault: FakeVault, llm: FakeOpenAI) -> tuple[str, str]:
    return (
        vault.addr.replace("://", f"://ops:{VAULT_PASSWORD}@"),
        llm.base_url.replace("://", f"://gateway:{ENCODED_LLM_PASSWORD}@"),
    )


async def test_a_password_in_the_urls_of_failing_peers_is_used_and_never_shown(
    make_settings: Callable[..., Settings],
    vault: FakeVault,
    llm: FakeOpenAI,
    ledger_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    vault_addr, llm_url = _urls(vault, llm)
    settings = make_settings(
        vault=VaultConfig(addr=vault_addr, token=SecretStr(TOKEN), timeout_s=2, retries=0, cache_ttl_s=0),
        llm=LLMConfig(api_key=LLM_KEY, base_url=llm_url, model="test-model", timeout_s=5, max_retries=0),
    )
    llm.enqueue(Reply.error(500, "the upstream failed"))
    outputs: dict[str, Any] = {}
    with caplog.at_level(logging.DEBUG):
        async with connect(settings) as client:
            _, outputs["read"] = await call(client, "read_docs", {"name": "backup-restore"})
            vault.fail_next(500)
            _, outputs["vault 500"] = await call(client, "read_docs", {"name": "backup-restore"})
            _, outputs["llm 500"] = await call(client, "analyze", {"description": "Is the backup fine?"})
            vault.stop()
            _, outputs["vault down"] = await call(client, "read_docs", {"name": "backup-restore"})
            _, outputs["logs"] = await call(client, "read_logs", {"limit": 10})
        ledger = {p.name: p.read_bytes() for p in ledger_path.parent.iterdir()}

    errors = {name: (o.get("error") or {}).get("type") for name, o in outputs.items()}
    assert errors == {"read": None, "vault 500": "VAULT_ERROR", "llm 500": "LLM_UNAVAILABLE",
                      "vault down": "VAULT_UNREACHABLE", "logs": None}  # fmt: skip
    host = vault_addr.rpartition("@")[2]
    assert f"Vault at {host} " in outputs["vault down"]["error"]["message"]  # the host is named, not the user
    channels = {
        **{f"output {name}": json.dumps(output).encode() for name, output in outputs.items()},
        **{f"ledger {name}": blob for name, blob in ledger.items()},
        "log at DEBUG": caplog.text.encode(),
    }
    assert {name: leaks(blob) for name, blob in channels.items() if leaks(blob)} == {}
    assert "HTTP Request: POST http://127.0.0.1:" in caplog.text  # the library's request line, without the user
    # Used all the same: both peers were sent the credentials their URLs hold.
    assert {r.headers.get("authorization") for r in vault.requests} == {_basic("ops", VAULT_PASSWORD)}
    assert [r.header("authorization") for r in llm.chat_requests] == [_basic("gateway", LLM_PASSWORD)]


@pytest.mark.subprocess
@pytest.mark.parametrize("vault_up", [True, False], ids=["vault up", "vault down"])
def test_doctor_and_config_show_name_the_urls_without_their_passwords(
    vault: FakeVault, llm: FakeOpenAI, ledger_path: Path, vault_up: bool
) -> None:
    vault_addr, llm_url = _urls(vault, llm)
    if not vault_up:
        vault.stop()
    env = {
        "VAULT_ADDR": vault_addr, "VAULT_TOKEN": TOKEN, "OPENAI_BASE_URL": llm_url, "OPENAI_API_KEY": LLM_KEY,
        "PLANNER_MCP_MODEL": "test-model", "PLANNER_MCP_OAUTH_ISSUER": "https://auth:c4naryIssuer@issuer.example",
        "PLANNER_MCP_HTTP_PUBLIC_URL": "https://mcp:c4naryPublic@mcp.example/mcp",
    }  # fmt: skip
    doctor = run_cli(ledger_path, "--log-level", "DEBUG", "doctor", **env)
    shown = run_cli(ledger_path, "--log-level", "DEBUG", "config", "show", **env)
    assert shown.returncode == 0 and doctor.returncode in (0, 1), doctor.stderr
    host = vault_addr.rpartition("@")[2]
    assert f'VAULT_ADDR = "http://{host}"' in shown.stdout and "https://issuer.example" in shown.stdout
    assert ("answers at" if vault_up else "could not be reached") in doctor.stdout
    for name, text in {"doctor": doctor.stdout + doctor.stderr, "config show": shown.stdout + shown.stderr}.items():
        assert leaks(text.encode()) == [], name
    assert llm.requests[0].header("authorization") == _basic("gateway", LLM_PASSWORD)  # the model list, asked for
