"""Files that configure trust are refused, whatever they hold, when anyone but their user or root could change them.

Each test hands a real `planner-mcp` process a file another user could have written (its mode, its folder's
mode, its owner, a link through a shared folder), as a local attacker would leave it.
"""

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import API_KEY, policy_file
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import run_cli, run_server

pytestmark = pytest.mark.subprocess

STRANGER = 4242
"""A uid no test user has: the owner a root test gives a file to stand for another user."""

_as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can give a file to another user; as any other user this case cannot be set up"
)


def _shared(path: Path) -> str:
    path.chmod(0o666)
    return f"`chmod go-w {path}`"


def _group_writable(path: Path) -> str:
    path.chmod(0o620)
    return f"`chmod go-w {path}`"


def _in_a_shared_folder(path: Path) -> str:
    path.parent.chmod(0o777)
    return f"`chmod go-w {path.parent}`"


def _through_a_link_to_a_shared_folder(path: Path) -> str:
    """The name is in a private folder; the file it leads to sits in a folder anyone can write."""
    shared = path.parent.parent / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    target = shared / path.name
    path.rename(target)
    path.symlink_to(target)
    return f"`chmod go-w {shared}`"


def _linked_from_a_shared_folder(path: Path) -> str:
    """The name and the file are private; a link on the way sits in a folder anyone can write (and re-point)."""
    shared = path.parent / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    real = path.rename(path.with_name("real.toml"))
    (shared / "link").symlink_to(real)
    path.symlink_to(shared / "link")
    return f"`chmod go-w {shared}`"


def _owned_by_another_user(path: Path) -> str:
    os.chown(path, STRANGER, -1)
    return f"belongs to {STRANGER}"


def _in_a_folder_another_user_owns(path: Path) -> str:
    os.chown(path.parent, STRANGER, -1)
    return f"{path.parent} belongs to {STRANGER}"


HOSTILE: list[object] = [
    _shared,
    _group_writable,
    _in_a_shared_folder,
    _through_a_link_to_a_shared_folder,
    _linked_from_a_shared_folder,
    pytest.param(_owned_by_another_user, marks=_as_root),
    pytest.param(_in_a_folder_another_user_owns, marks=_as_root),
]


def _private(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "etc"
    folder.mkdir(mode=0o700)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("make_hostile", HOSTILE)
def test_a_config_file_others_could_change_is_refused_and_the_key_goes_nowhere(
    tmp_path: Path, llm: FakeOpenAI, make_hostile: Callable[[Path], str]
) -> None:
    # No secret in the file: it only points the environment's key at an endpoint.
    text = f'OPENAI_BASE_URL = "{llm.base_url}"\nPLANNER_MCP_MODEL = "test-model"\n'
    config = _private(tmp_path, "planner-mcp.toml", text)
    env = {"PLANNER_MCP_CONFIG": str(config), "OPENAI_API_KEY": API_KEY}
    llm.enqueue(Reply.text('{"analysis": "ok", "confidence": 0.9, "assumptions": [], "uncertainties": []}'))
    trusted = run_cli(tmp_path / "ledger.db", "call", "analyze", '{"description": "a backup plan"}', **env)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert [r.header("authorization") for r in llm.requests] == [f"Bearer {API_KEY}"]
    llm.reset()

    fix = make_hostile(config)
    for args in (["call", "analyze", '{"description": "a backup plan"}'], ["doctor"], ["config", "show"]):
        proc = run_cli(tmp_path / "ledger.db", *args, **env)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert f"PLANNER_MCP_CONFIG: {config} is refused" in proc.stderr and fix in proc.stderr
        assert API_KEY not in proc.stdout + proc.stderr
    assert llm.requests == []


@pytest.mark.parametrize("make_hostile", HOSTILE)
def test_a_policy_file_others_could_change_is_refused_and_doctor_names_it(
    tmp_path: Path, make_hostile: Callable[[Path], str]
) -> None:
    policy = _private(tmp_path, "policy.toml", "")
    policy_file(policy, tier=4, confidence_threshold=0.0, agent_id="planted")
    policy.chmod(0o600)
    env = {"PLANNER_MCP_POLICY": str(policy)}
    assert run_cli(tmp_path / "ledger.db", "tools", **env).returncode == 0

    fix = make_hostile(policy)
    tools = run_cli(tmp_path / "ledger.db", "tools", **env)
    assert tools.returncode == 2 and "planted" not in tools.stdout
    assert f"PLANNER_MCP_POLICY: {policy} is refused" in tools.stderr and fix in tools.stderr
    doctor = run_cli(tmp_path / "ledger.db", "doctor", **env)
    assert doctor.returncode == 1
    [line] = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL  policy:")]
    assert f"{policy} is refused" in line and fix in line
    served = run_server(tmp_path / "ledger.db", "serve", env=env, stdin=subprocess.DEVNULL)
    assert served.returncode == 2 and f"{policy} is refused" in served.stderr


def test_a_file_in_a_shared_folder_with_the_sticky_bit_is_trusted(tmp_path: Path) -> None:
    """As in /tmp: others may add entries there but cannot rename or delete ours."""
    config = _private(tmp_path, "planner-mcp.toml", 'PLANNER_MCP_MODEL = "llama3.1"\n')
    config.parent.chmod(0o1777)
    proc = run_cli(tmp_path / "ledger.db", "config", "show", PLANNER_MCP_CONFIG=str(config))
    assert proc.returncode == 0, proc.stderr
    assert 'PLANNER_MCP_MODEL = "llama3.1"' in proc.stdout


def test_a_ledger_key_file_others_could_replace_is_refused_by_the_server_verify_and_doctor(tmp_path: Path) -> None:
    """With the ledger and a key of their own, someone could recompute the whole chain."""
    key = _private(tmp_path, "ledger.key", "k" * 64)
    ledger = tmp_path / "ledger.db"
    env = {"PLANNER_MCP_LEDGER_KEY_FILE": str(key)}
    assert run_cli(ledger, "call", "list_docs", **env).returncode == 0
    assert run_cli(ledger, "ledger", "verify", **env).returncode == 0

    key.chmod(0o666)
    fix = f"`chmod go-w {key}`"
    for args in (["call", "list_docs"], ["ledger", "verify"], ["ledger", "checkpoint"]):
        proc = run_cli(ledger, *args, **env)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert f"PLANNER_MCP_LEDGER_KEY_FILE: {key} is refused" in proc.stderr and fix in proc.stderr
        assert "k" * 32 not in proc.stdout + proc.stderr
    doctor = run_cli(ledger, "doctor", **env)
    assert doctor.returncode == 1
    [line] = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL  ledger.key:")]
    assert fix in line


@pytest.mark.parametrize("setting", ["VAULT_CACERT", "VAULT_CAPATH"])
def test_a_vault_ca_others_could_change_is_refused(tmp_path: Path, setting: str) -> None:
    """Whoever can add a CA can stand in for Vault and be handed its token."""
    bundle = _private(tmp_path, "vault-ca.pem", "-----BEGIN CERTIFICATE-----\n")
    named = bundle if setting == "VAULT_CACERT" else bundle.parent
    env = {"VAULT_ADDR": "https://127.0.0.1:9", setting: str(named)}
    assert run_cli(tmp_path / "ledger.db", "config", "show", **env).returncode == 0

    bundle.chmod(0o664)
    proc = run_cli(tmp_path / "ledger.db", "config", "show", **env)
    assert proc.returncode == 2
    assert f"{setting}: {bundle} is refused" in proc.stderr and f"`chmod go-w {bundle}`" in proc.stderr
