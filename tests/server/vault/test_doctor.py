"""The command line against the loopback Vault, configured only by Vault's environment variables."""

import json
import subprocess
from pathlib import Path

import pytest

from server.vault import policy_hcl
from tests.conftest import rows
from tests.peers.vault_server import FakeVault
from tests.processes import run_cli
from tests.vault_seed import LLM_KEY, SHIPPED_POLICY, TOKEN, parse_hcl

pytestmark = pytest.mark.subprocess


def _lines(proc: subprocess.CompletedProcess[str]) -> dict[str, str]:
    checks = {}
    for line in proc.stdout.splitlines():
        if not line.startswith(" "):
            mark, rest = line.split(maxsplit=1)
            checks[rest.split(":", 1)[0]] = mark
    return checks


def test_doctor_reports_each_vault_check_without_printing_secrets(vault: FakeVault, ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "doctor", VAULT_ADDR=vault.addr, VAULT_TOKEN=TOKEN)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = _lines(proc)
    assert checks["vault.reachable"] == checks["vault.sealed"] == checks["vault.auth"] == "ok"
    assert checks["vault.least-privilege"] == "ok"
    assert checks["vault.tls"] == "WARN"  # plain http on loopback
    path_checks = {name: mark for name, mark in checks.items() if name.startswith("vault.path ")}
    assert path_checks == {
        "vault.path secret/metadata/docs/": "ok",
        "vault.path secret/data/docs/<name>": "ok",
        "vault.path secret/metadata/inventory/": "ok",
        "vault.path secret/data/inventory/proxmox": "ok",
        "vault.path secret/data/api-keys/openrouter": "ok",
    }
    assert "authenticated by token" in proc.stdout and "expires in" in proc.stdout
    assert TOKEN not in proc.stdout + proc.stderr and LLM_KEY not in proc.stdout + proc.stderr
    assert vault.requests_to("secret/data/") == []  # capabilities were asked for, no secret was read


def test_doctor_names_each_path_a_narrow_token_cannot_use(vault: FakeVault, ledger_path: Path) -> None:
    vault.add_policy("docs-only", {"secret/data/docs/+": ["read"]})
    vault.add_token("docs-only-token-opaque-55", policies=["docs-only"])
    proc = run_cli(ledger_path, "doctor", VAULT_ADDR=vault.addr, VAULT_TOKEN="docs-only-token-opaque-55")
    assert proc.returncode == 1
    checks = _lines(proc)
    assert checks["vault.path secret/data/docs/<name>"] == "ok"
    assert checks["vault.path secret/data/inventory/proxmox"] == "FAIL"
    assert "planner-mcp vault-policy" in proc.stdout


def test_doctor_warns_about_a_token_that_can_do_more_than_it_needs(vault: FakeVault, ledger_path: Path) -> None:
    vault.add_token("root-token-opaque-0000003", policies=["root"])
    proc = run_cli(ledger_path, "doctor", VAULT_ADDR=vault.addr, VAULT_TOKEN="root-token-opaque-0000003")
    checks = _lines(proc)
    assert checks["vault.auth"] == checks["vault.least-privilege"] == "WARN"
    assert "root-token-opaque-0000003" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("fault", ["sealed", "down", "bad-token"])
def test_doctor_fails_with_a_fix_when_vault_is_not_usable(vault: FakeVault, ledger_path: Path, fault: str) -> None:
    token = "not-a-token-opaque-00000" if fault == "bad-token" else TOKEN
    vault.sealed = fault == "sealed"
    if fault == "down":
        vault.stop()
    proc = run_cli(ledger_path, "doctor", VAULT_ADDR=vault.addr, VAULT_TOKEN=token)
    assert proc.returncode == 1
    failed = {"sealed": "vault.sealed", "down": "vault.reachable", "bad-token": "vault.auth"}[fault]
    assert _lines(proc)[failed] == "FAIL"
    assert "fix:" in proc.stdout and token not in proc.stdout + proc.stderr


def test_the_shipped_policy_is_what_vault_policy_prints(ledger_path: Path) -> None:
    proc = run_cli(ledger_path, "vault-policy")
    assert proc.returncode == 0
    assert proc.stdout == SHIPPED_POLICY.read_text(encoding="utf-8") == policy_hcl("secret")


def test_the_policy_grants_read_and_list_on_the_two_folders_and_nothing_else() -> None:
    rules = parse_hcl(policy_hcl("team-kv", llm_key_name=None))
    kv = {path: caps for path, caps in rules.items() if path.startswith("team-kv/")}
    assert kv == {
        "team-kv/data/docs/+": ["read"],
        "team-kv/metadata/docs/": ["list"],
        "team-kv/data/inventory/+": ["read"],
        "team-kv/metadata/inventory/": ["list"],
    }
    assert all(set(caps) <= {"read", "list", "update"} for caps in rules.values())
    assert set(rules) - set(kv) == {"auth/token/lookup-self", "auth/token/renew-self", "sys/capabilities-self"}


def test_vault_addr_and_vault_token_select_the_vault_store(vault: FakeVault, ledger_path: Path) -> None:
    proc = run_cli(
        ledger_path, "call", "read_docs", '{"name": "vm-provisioning"}', VAULT_ADDR=vault.addr, VAULT_TOKEN=TOKEN
    )
    assert proc.returncode == 0, proc.stderr
    output = json.loads(proc.stdout)
    assert output["provenance"]["sources"][0] == {
        "kind": "docs",
        "name": "vm-provisioning",
        "store": "vault",
        "version": "2",
    }
    assert TOKEN not in proc.stdout + proc.stderr


def test_skip_verify_is_warned_on_stderr_and_stdout_stays_clean(vault: FakeVault, ledger_path: Path) -> None:
    env = {"VAULT_ADDR": vault.addr, "VAULT_TOKEN": TOKEN, "VAULT_SKIP_VERIFY": "true"}
    proc = run_cli(ledger_path, "call", "list_docs", **env)
    assert proc.returncode == 0, proc.stderr
    assert "VAULT_SKIP_VERIFY=true" in proc.stderr and "NOT verified" in proc.stderr
    assert json.loads(proc.stdout)["data"]["docs"] == ["backup-restore", "vm-provisioning"]
    assert rows(ledger_path)[0]["notes"] == "vault-tls-unverified: VAULT_SKIP_VERIFY=true"


def test_doctor_reports_a_lying_vault_as_a_failed_check_and_prints_none_of_its_strings(
    vault: FakeVault, ledger_path: Path
) -> None:
    escape = "\x1b]0;owned\x07"
    seal = {"sealed": False, "version": f"1.17{escape}", "initialized": True}
    vault.answer_raw("sys/seal-status", 200, json.dumps(seal).encode(), headers={"Content-Type": "application/json"})
    lie = {"capabilities": [["read"]], "secret/metadata/docs/": ["list", {"x": 1}]}
    answer = json.dumps({"data": lie, **lie}).encode()
    vault.answer_raw("sys/capabilities-self", 200, answer, headers={"Content-Type": "application/json"})
    proc = run_cli(ledger_path, "doctor", VAULT_ADDR=vault.addr, VAULT_TOKEN=TOKEN)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stdout + proc.stderr
    checks = _lines(proc)
    assert checks["vault.reachable"] == checks["vault.auth"] == "ok"
    assert checks["vault.paths"] == "FAIL"
    assert "VAULT_ERROR" in proc.stdout and "sys/capabilities-self" in proc.stdout
