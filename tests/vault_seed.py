"""What a planner's Vault holds in the tests: its token and AppRole, the runbooks and inventory it serves, and the
token's policy, parsed from the HCL file the project ships (so every test that loads it also proves the shipped
policy grants what the server needs)."""

import re
from pathlib import Path
from typing import Any

from tests.peers.vault_server import FakeVault

__all__ = ["INVENTORY", "LLM_KEY", "ROLE_ID", "RUNBOOK", "SECRET_ID", "SHIPPED_POLICY", "TOKEN", "load", "parse_hcl"]

TOKEN = "planner-vault-token-opaque-0042"
"""Deliberately not shaped like a Vault token: only the known-secret scrubbing can catch it."""
ROLE_ID = "planner-role-id"
SECRET_ID = "planner-secret-id-opaque-0077"
LLM_KEY = "vault-held-llm-key-opaque-9931"
SHIPPED_POLICY = Path(__file__).parents[1] / "server" / "vault" / "planner-mcp.hcl"

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
