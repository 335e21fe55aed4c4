"""A Vault-API server on loopback, loaded with runbooks and inventory, and settings that point at it.

The token's policy is parsed from the HCL file the project ships, so every test here also proves that
the shipped policy grants what the server needs.
"""

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

from server import Settings
from server.vault import VaultConfig
from tests.peers.vault_server import FakeVault

TOKEN = "planner-vault-token-opaque-0042"
"""Deliberately not shaped like a Vault token: only the known-secret scrubbing can catch it."""
ROLE_ID = "planner-role-id"
SECRET_ID = "planner-secret-id-opaque-0077"
LLM_KEY = "vault-held-llm-key-opaque-9931"
SHIPPED_POLICY = Path(__file__).parents[3] / "server" / "vault" / "planner-mcp.hcl"

RUNBOOK = "# VM provisioning\n\nClone template 9000, then register the VM with HA.\n"
INVENTORY: dict[str, Any] = {"cluster": "pve-prod", "nodes": [{"name": "pve01"}, {"name": "pve02"}]}


def parse_hcl(text: str) -> dict[str, list[str]]:
    """The path rules of a simple Vault policy file."""
    rules = re.findall(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]\s*\}', text)
    return {path: re.findall(r'"([^"]+)"', caps) for path, caps in rules}


def load(vault: FakeVault) -> None:
    vault.add_policy("planner", parse_hcl(SHIPPED_POLICY.read_text(encoding="utf-8")))
    vault.add_token(TOKEN, policies=["planner"], ttl=3600)
    vault.put("docs/vm-provisioning", {"content": "# draft"})
    vault.put("docs/vm-provisioning", {"content": RUNBOOK})  # version 2
    vault.put("docs/backup-restore", {"title": "Backups", "steps": ["snapshot", "verify"]})
    vault.put("docs/archive/old-runbook", {"content": "in a sub-folder: not an entry of docs/"})
    vault.put("inventory/proxmox", INVENTORY)
    vault.put("inventory/edge-sites", {"sites": ["a", "b"]})
    vault.put("api-keys/openrouter", {"api_key": LLM_KEY})
    vault.put("other/secret", {"password": "never-read-this-0000"})


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        load(server)
        server.reset_requests()
        yield server


@pytest.fixture
def vault_config(vault: FakeVault) -> Callable[..., VaultConfig]:
    def make(**overrides: Any) -> VaultConfig:
        values: dict[str, Any] = {
            "addr": vault.addr,
            "token": SecretStr(TOKEN),
            "timeout_s": 2.0,
            "retries": 1,
            "cache_ttl_s": 0.0,
            **overrides,
        }
        return VaultConfig(**values)

    return make


@pytest.fixture
def vault_settings(
    make_settings: Callable[..., Settings], vault_config: Callable[..., VaultConfig]
) -> Callable[..., Settings]:
    def make(vault_overrides: dict[str, Any] | None = None, **overrides: Any) -> Settings:
        return make_settings(vault=vault_config(**(vault_overrides or {})), **overrides)

    return make


async def until(condition: Callable[[], bool], timeout_s: float = 5) -> None:
    """Wait, bounded, for something another thread does (a request reaching the fake Vault)."""
    with anyio.fail_after(timeout_s):
        while not condition():
            await anyio.sleep(0.01)


def kv_reads(vault: FakeVault) -> int:
    """How many requests reached Vault's KV data or metadata paths."""
    return len(vault.requests_to("secret/data/")) + len(vault.requests_to("secret/metadata/"))
