"""Canary secrets planted in the environment, the store and Vault never come out: not in tool output (structured
or text), the ledger's files (WAL included), stderr at DEBUG, nor the requests the LLM endpoint receives.

Every canary carries the marker of `tests.resilience.canaries`.
"""

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from pydantic import SecretStr

from ledger import REDACTED
from server import Settings
from server.config.settings import HTTPConfig, LLMConfig
from server.vault import VaultConfig
from tests.conftest import PLAN, call, call_once, connect, rows
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.vault_server import FakeVault
from tests.processes import stdio_params
from tests.resilience.canaries import leaks
from tests.vault_seed import SHIPPED_POLICY, parse_hcl

pytestmark = pytest.mark.anyio

# What the server holds: its environment and Vault's api-keys/.
OPENAI_KEY = "sk-proj-c4naryOPENAIkey0123456789abcdefXY"
VAULT_TOKEN = "hvs.CAESIc4naryVAULTtoken0123456789abcdefgh"
SECRET_ID = "c4nary-approle-secret-id-7f3e9a1c5b2d"
VAULT_LLM_KEY = "sk-or-v1-c4naryVAULTllmKEY0123456789abcdef0123"
LEDGER_KEY = "c4naryLEDGERkey0123456789abcdef0123456789abcdef"
HTTP_TOKEN = "c4nary-http-bearer-token-0123456789abcdef"
ROLE_ID = "planner-role"

# What the store holds, pasted into runbooks and inventory by people who should not have.
AWS_KEY = "AKIAC4NARYAWS0123456"
GITHUB_TOKEN = "ghp_c4naryGITHUB0123456789abcdefghijklmn"
PEM_BODY = [
    "MIIEowIBAAKCAQEAc4naryPEMbody0line1xyzABCDEFGHIJKLMNOPQRSTUV",
    "c4naryPEMbody0line2qrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTU",
    "c4naryPEMbody0line3==",
]
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----"
PASSWORD = "c4nary-Hunter2-password-value"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJjNG5hcnkiOiJqd3QifQ.c4naryJWTsignature0123456"
BEARER = "c4naryBEARERtoken0123456789abc"

RUNBOOK = f"""# Rotate the automation credentials

1. Drain pve01 and check `qm status 103` is `stopped`.
2. The backup bucket's key is {AWS_KEY}; the deploy token is {GITHUB_TOKEN}.
3. Call the API with `curl -H "Authorization: Bearer {BEARER}" https://pve01:8006/api2/json`.
4. The session token for the dashboard: {JWT}
5. The node's SSH key, for emergencies:

{PEM}

Roll back by restoring the previous key from Vault.
"""
CREDS_DOC = {"service": "backup", "password": PASSWORD, "api_key": GITHUB_TOKEN, "notes": f"bucket key {AWS_KEY}"}
INVENTORY = {
    "cluster": "pve-prod",
    "nodes": [{"name": "pve01", "ipmi": {"user": "admin", "password": PASSWORD}}, {"name": "pve02"}],
    "automation": {
        "aws_access_key_id": AWS_KEY,
        "github_token": GITHUB_TOKEN,
        "ssh_private_key": PEM,
        "api": {"authorization": f"Bearer {BEARER}", "url": "https://pve01:8006"},
        "notes": [f"dashboard session {JWT}", "rotate quarterly"],
    },
}
STORE_SECRETS = [AWS_KEY, GITHUB_TOKEN, *PEM_BODY, PASSWORD, JWT, BEARER]
SERVER_SECRETS = [OPENAI_KEY, VAULT_TOKEN, SECRET_ID, VAULT_LLM_KEY, LEDGER_KEY, HTTP_TOKEN]


def _write_data(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "inventory").mkdir()
    (root / "docs" / "rotate-keys.md").write_text(RUNBOOK, encoding="utf-8")
    (root / "docs" / "backup-creds.json").write_text(json.dumps(CREDS_DOC), encoding="utf-8")
    (root / "inventory" / "proxmox.json").write_text(json.dumps(INVENTORY), encoding="utf-8")
    return root


def _load_vault(vault: FakeVault) -> None:
    vault.add_policy("planner", parse_hcl(SHIPPED_POLICY.read_text(encoding="utf-8")))
    vault.add_token(VAULT_TOKEN, policies=["planner"], ttl=3600)
    vault.expire(VAULT_TOKEN)  # refused: the server falls back to AppRole, with its secret id
    vault.add_approle(ROLE_ID, SECRET_ID, policies=["planner"])
    vault.put("docs/rotate-keys", {"content": RUNBOOK})
    vault.put("docs/backup-creds", CREDS_DOC)
    vault.put("inventory/proxmox", INVENTORY)
    vault.put("api-keys/openrouter", {"api_key": VAULT_LLM_KEY})


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "ledger.key"  # outside the ledger's folder, as operators are told
    path.parent.mkdir()
    path.write_text(LEDGER_KEY + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        _load_vault(server)
        yield server


def _plan_echoing_secrets() -> str:
    # A confused or compromised model quoting what it was shown, and the server's own key.
    steps = [{**PLAN["steps"][0], "action": f"Export AWS_ACCESS_KEY_ID={AWS_KEY} and paste {PEM}"}]
    return json.dumps({**PLAN, "summary": f"Use {GITHUB_TOKEN} with {OPENAI_KEY} or {VAULT_LLM_KEY}", "steps": steps})


def _script_llm(llm: FakeOpenAI, key: str) -> None:
    analysis = {"analysis": f"The doc holds {JWT} and Bearer {BEARER}.", "confidence": 0.9, "assumptions": [key]}
    llm.enqueue(
        Reply.text(_plan_echoing_secrets()),
        Reply.text(json.dumps(analysis)),
        Reply.error(401, f"Incorrect API key provided: {key}. You can find your API key at ..."),
        Reply.text(f"Not JSON at all: {PEM}\nkey={key} token={GITHUB_TOKEN}"),
    )


Expected = tuple[str, str | None]
"""A call's decision and error type."""

_NAMED_BY_SECRETS: list[tuple[str, dict[str, Any], Expected]] = [
    # Entry names shaped like secrets: NOT_FOUND names the entry it looked for.
    ("read_docs", {"name": AWS_KEY}, ("ERROR", "NOT_FOUND")),
    ("read_docs", {"name": OPENAI_KEY}, ("ERROR", "NOT_FOUND")),
    ("read_docs", {"name": LEDGER_KEY}, ("ERROR", "NOT_FOUND")),  # opaque: only the known-secret list catches it
    ("read_inventory", {"name": VAULT_TOKEN}, ("ERROR", "NOT_FOUND")),
]

_PLAN_ARGS = {
    "description": f"Rotate {GITHUB_TOKEN}",
    "context": {"aws": AWS_KEY, "k": PEM},
    "constraints": [f"never print {JWT}"],
    "docs": ["rotate-keys", "backup-creds"],
}

_CALLS: list[tuple[str, dict[str, Any], Expected]] = [
    ("list_docs", {}, ("EXECUTE", None)),
    ("read_docs", {"name": "rotate-keys"}, ("EXECUTE", None)),
    ("read_docs", {"name": "backup-creds"}, ("EXECUTE", None)),
    ("read_inventory", {}, ("EXECUTE", None)),
    ("read_inventory", {"name": "proxmox"}, ("EXECUTE", None)),
    ("read_docs", {"name": f"../{GITHUB_TOKEN}"}, ("ERROR", "INVALID_NAME")),
    ("read_docs", {"name": "rotate-keys", "token": SECRET_ID, "pem": PEM}, ("ERROR", "INVALID_INPUT")),
    ("ssh", {"host": "pve01", "password": PASSWORD, "identity": PEM}, ("ERROR", "FORBIDDEN_ACTION")),
    (JWT, {"note": f"Bearer {BEARER}"}, ("ERROR", "FORBIDDEN_ACTION")),  # a tool named by a secret
    ("generate_plan", _PLAN_ARGS, ("EXECUTE", None)),
    ("analyze", {"description": f"Is {VAULT_TOKEN} still valid?", "docs": ["rotate-keys"]}, ("EXECUTE", None)),
    ("generate_plan", {"description": "Add a VM"}, ("ERROR", "LLM_HTTP_ERROR")),  # a 401 that echoes the key
    ("analyze", {"description": "What changed?", "context": {"secret_id": SECRET_ID}}, ("ESCALATE", None)),
    ("read_logs", {"limit": 100}, ("EXECUTE", None)),
]


async def _exercise(
    client: Client, *, secret_names: bool = True, on_vault: FakeVault | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every tool, refusals and failing calls whose messages could echo a secret; every output and its text."""
    calls = _CALLS + (_NAMED_BY_SECRETS if secret_names else [])
    outputs, texts = [], []
    for tool, arguments, expected in calls:
        result, output = await call(client, tool, arguments)
        assert (output["decision"], (output.get("error") or {}).get("type")) == expected, tool
        outputs.append(output)
        texts.append(result.content[0].text)  # type: ignore[union-attr]
    if on_vault is not None:
        on_vault.fail_next(500, count=3)  # a Vault error on a read (retries included)
        result, output = await call(client, "read_docs", {"name": "rotate-keys"})
        assert output["error"]["type"] == "VAULT_ERROR"
        outputs.append(output)
        texts.append(result.content[0].text)  # type: ignore[union-attr]
    with anyio.fail_after(10):
        resource = await client.read_resource("docs://rotate-keys")
    texts.append(resource.model_dump_json())
    return outputs, texts


def _check_outputs(outputs: list[dict[str, Any]], texts: list[str]) -> None:
    """No canary in any output, and the calls did what they are for: the scrubbing hid secrets, not data."""
    assert leaks(json.dumps(outputs).encode() + "".join(texts).encode()) == []
    listing, runbook, creds, inventory = outputs[:4]
    assert sorted(listing["data"]["docs"]) == ["backup-creds", "rotate-keys"]
    content = runbook["data"]["content"]
    assert "Drain pve01" in content and "Roll back by restoring" in content and content.count(REDACTED) == 5
    assert "5 secret-looking values in docs/rotate-keys were replaced" in runbook["notes_for_humans"]
    redacted = {"password": REDACTED, "api_key": REDACTED, "notes": f"bucket key {REDACTED}"}
    assert creds["data"]["content"] == {**CREDS_DOC, **redacted}
    assert inventory["data"]["content"]["nodes"][0]["ipmi"] == {"user": "admin", "password": REDACTED}
    assert inventory["data"]["content"]["automation"]["api"]["url"] == "https://pve01:8006"
    assert outputs[8]["action"] == REDACTED  # the tool named by a secret, as echoed
    plan = outputs[9]
    assert any("in the model's reply" in a for a in plan["assumptions"])
    assert any("in docs/rotate-keys were replaced" in a for a in plan["assumptions"])


def _ledger_bytes(ledger_path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in ledger_path.parent.iterdir()}


def _check_llm(llm: FakeOpenAI, calls: int) -> None:
    bodies = [r.body for r in llm.requests]
    assert len(llm.chat_requests) == calls
    assert leaks(b"\n".join(bodies)) == []
    prompt = json.dumps(llm.chat_requests[0].json)
    assert "Drain pve01" in prompt and REDACTED in prompt  # the runbook was sent, without its secrets


async def test_no_canary_leaves_an_in_memory_server_on_the_file_store(
    make_settings: Callable[..., Settings],
    llm: FakeOpenAI,
    ledger_path: Path,
    key_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _script_llm(llm, OPENAI_KEY)
    settings = make_settings(
        data_dir=_write_data(tmp_path / "data"),
        ledger_key_file=key_file,
        llm=LLMConfig(api_key=OPENAI_KEY, base_url=llm.base_url, model="test-model", timeout_s=5, max_retries=0),
        http=HTTPConfig(token=SecretStr(HTTP_TOKEN)),
    )
    with caplog.at_level(logging.DEBUG):
        async with connect(settings) as client:
            outputs, texts = await _exercise(client)
            live = _ledger_bytes(ledger_path)
    closed = _ledger_bytes(ledger_path)
    _check_outputs(outputs, texts)
    assert {"ledger.db", "ledger.db-wal", "ledger.db-shm"} <= live.keys() and len(live["ledger.db-wal"]) > 0
    for name, blob in {**live, **{f"{k} (closed)": v for k, v in closed.items()}}.items():
        assert leaks(blob) == [], name
    assert len(rows(ledger_path)) == len(outputs) + 1
    assert caplog.records and leaks(caplog.text.encode()) == []
    _check_llm(llm, calls=4)


async def test_no_canary_leaves_an_in_memory_server_on_vault_with_the_llm_key_from_vault(
    make_settings: Callable[..., Settings],
    llm: FakeOpenAI,
    vault: FakeVault,
    ledger_path: Path,
    key_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _script_llm(llm, VAULT_LLM_KEY)
    config = VaultConfig(
        addr=vault.addr, token=SecretStr(VAULT_TOKEN), role_id=ROLE_ID, secret_id=SecretStr(SECRET_ID),
        timeout_s=2, retries=2, cache_ttl_s=0,
    )  # fmt: skip
    settings = make_settings(
        vault=config,
        ledger_key_file=key_file,
        llm=LLMConfig(base_url=llm.base_url, model="test-model", key_from_vault=True, timeout_s=5, max_retries=0),
    )
    # At INFO: the stdio run below covers Vault at DEBUG, where a secret-shaped entry name is a known leak (xfail).
    with caplog.at_level(logging.INFO):
        async with connect(settings) as client:
            outputs, texts = await _exercise(client, on_vault=vault)
            live = _ledger_bytes(ledger_path)
    closed = _ledger_bytes(ledger_path)
    _check_outputs(outputs, texts)
    [issued, *_] = vault.issued_tokens  # the AppRole login's token is a secret too, and not a canary by name
    for name, blob in {**live, **{f"{k} (closed)": v for k, v in closed.items()}}.items():
        assert leaks(blob) == [] and issued.encode() not in blob, name
    assert "ledger.db-wal" in live
    everything = json.dumps(outputs) + "".join(texts) + caplog.text + str([r.body for r in llm.requests])
    assert issued not in everything
    assert leaks(caplog.text.encode()) == []
    _check_llm(llm, calls=4)
    assert {r.header("authorization") for r in llm.chat_requests} == {f"Bearer {VAULT_LLM_KEY}"}  # used, not shown


@asynccontextmanager
async def _stdio(env: dict[str, str], errlog: Path) -> AsyncIterator[Client]:
    params = stdio_params(env, "--log-level", "DEBUG", "serve")
    with errlog.open("w", encoding="utf-8") as stderr:
        async with Client(stdio_client(params, errlog=stderr)) as client:
            yield client


@pytest.mark.subprocess
@pytest.mark.parametrize("store", ["file", "vault"])
async def test_no_canary_reaches_a_stdio_servers_output_ledger_or_debug_stderr(
    store: str, llm: FakeOpenAI, vault: FakeVault, ledger_path: Path, key_file: Path, tmp_path: Path
) -> None:
    key = VAULT_LLM_KEY if store == "vault" else OPENAI_KEY
    _script_llm(llm, key)
    env = {
        "PLANNER_MCP_LEDGER": str(ledger_path),
        "PLANNER_MCP_LEDGER_KEY_FILE": str(key_file),
        "PLANNER_MCP_HTTP_TOKEN": HTTP_TOKEN,
        "OPENAI_BASE_URL": llm.base_url,
        "PLANNER_MCP_MODEL": "test-model",
        "PLANNER_MCP_LLM_RETRIES": "0",
        "HOME": str(tmp_path),
    }
    if store == "vault":
        env |= {"VAULT_ADDR": vault.addr, "VAULT_TOKEN": VAULT_TOKEN, "VAULT_ROLE_ID": ROLE_ID,
                "VAULT_SECRET_ID": SECRET_ID, "PLANNER_MCP_VAULT_CACHE_TTL": "0"}  # fmt: skip
    else:
        env |= {"PLANNER_MCP_DATA": str(_write_data(tmp_path / "data")), "OPENAI_API_KEY": OPENAI_KEY}
    stderr = tmp_path / "stderr.log"
    with anyio.fail_after(90):
        async with _stdio(env, stderr) as client:
            on_vault = vault if store == "vault" else None
            outputs, texts = await _exercise(client, secret_names=on_vault is None, on_vault=on_vault)
            live = _ledger_bytes(ledger_path)  # while the server runs: the WAL holds the newest rows
    closed = _ledger_bytes(ledger_path)
    _check_outputs(outputs, texts)
    assert len(live.get("ledger.db-wal", b"")) > 0
    issued = [t.encode() for t in vault.issued_tokens]
    assert len(issued) == (1 if store == "vault" else 0)  # VAULT_TOKEN was refused; AppRole logged in once
    for name, blob in {
        **live,
        **{f"{k} (closed)": v for k, v in closed.items()},
        "stderr": stderr.read_bytes(),
    }.items():
        assert leaks(blob) == [] and not any(t in blob for t in issued), name
    log = stderr.read_text(encoding="utf-8")
    assert " DEBUG " in log and "generate_plan EXECUTE" in log  # DEBUG was on, and the calls were logged
    _check_llm(llm, calls=4)
    assert {r.header("authorization") for r in llm.chat_requests} == {f"Bearer {key}"}


async def test_the_http_bearer_token_is_scrubbed_like_every_other_server_secret(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    # An HTTP client knows the token; pasted into an argument, it must not be echoed nor kept in the ledger.
    settings = make_settings(http=HTTPConfig(token=SecretStr(HTTP_TOKEN)))
    _, output = await call_once(settings, "read_docs", {"name": HTTP_TOKEN})
    assert output["error"]["type"] == "NOT_FOUND"
    assert leaks(json.dumps(output).encode()) == []
    assert leaks(b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())) == []


async def test_a_secret_sent_as_an_entry_name_stays_out_of_the_debug_log_on_vault(
    make_settings: Callable[..., Settings], vault: FakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    config = VaultConfig(addr=vault.addr, role_id=ROLE_ID, secret_id=SecretStr(SECRET_ID), timeout_s=2, retries=0)
    with caplog.at_level(logging.DEBUG):
        _, output = await call_once(make_settings(vault=config), "read_docs", {"name": AWS_KEY})
    assert output["error"]["type"] == "NOT_FOUND" and leaks(json.dumps(output).encode()) == []
    assert leaks(caplog.text.encode()) == []


async def test_a_password_written_as_prose_in_a_runbook_is_redacted(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data = _write_data(tmp_path / "data")
    (data / "docs" / "ipmi.md").write_text(f"# IPMI\n\nLog in as admin, password: {PASSWORD}\n", encoding="utf-8")
    _, output = await call_once(make_settings(data_dir=data), "read_docs", {"name": "ipmi"})
    assert "Log in as admin" in output["data"]["content"] and leaks(json.dumps(output).encode()) == []
