"""TLS to Vault: verified against the configured CA; a wrong CA refused; skipping only when asked, and recorded."""

import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from server import Settings
from tests.conftest import call, call_once, connect, rows
from tests.peers.vault_server import FakeVault
from tests.vault_seed import RUNBOOK, load

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_vault(ca: trustme.CA) -> Iterator[FakeVault]:
    with FakeVault.over_https(ca) as server:
        load(server)
        yield server


def _pem(ca: trustme.CA, path: Path) -> Path:
    ca.cert_pem.write_to_path(str(path))
    return path


async def test_vault_over_https_is_verified_against_vault_cacert(
    vault_settings: Callable[..., Settings], https_vault: FakeVault, ca: trustme.CA, tmp_path: Path
) -> None:
    assert https_vault.addr.startswith("https://")
    settings = vault_settings({"addr": https_vault.addr, "cacert": _pem(ca, tmp_path / "ca.pem")})
    result, output = await call_once(settings, "read_docs", {"name": "vm-provisioning"})
    assert not result.is_error, output["error"]
    assert output["data"]["content"] == RUNBOOK


async def test_a_certificate_from_another_ca_is_refused_before_any_secret_is_sent(
    vault_settings: Callable[..., Settings], https_vault: FakeVault, tmp_path: Path
) -> None:
    other = _pem(trustme.CA(), tmp_path / "other-ca.pem")
    result, output = await call_once(
        vault_settings({"addr": https_vault.addr, "cacert": other}), "read_docs", {"name": "vm-provisioning"}
    )
    assert result.is_error and output["error"]["type"] == "VAULT_TLS_FAILURE"
    assert "VAULT_CACERT" in output["error"]["recommended_action"]
    assert https_vault.requests == []  # the handshake failed: no request, so no token, ever reached it


async def test_the_system_ca_store_does_not_trust_a_private_ca(
    vault_settings: Callable[..., Settings], https_vault: FakeVault
) -> None:
    _, output = await call_once(vault_settings({"addr": https_vault.addr}), "read_docs", {"name": "vm-provisioning"})
    assert output["error"]["type"] == "VAULT_TLS_FAILURE"


async def test_skipping_verification_works_only_when_asked_and_every_row_says_so(
    vault_settings: Callable[..., Settings],
    https_vault: FakeVault,
    ledger_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        async with connect(vault_settings({"addr": https_vault.addr, "skip_verify": True})) as client:
            _, read = await call(client, "read_docs", {"name": "vm-provisioning"})
            await call(client, "ssh", {"host": "pve01"})
    assert read["data"]["content"] == RUNBOOK
    assert any("VAULT_SKIP_VERIFY" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    actions = rows(ledger_path)
    intents = rows(ledger_path, "call_intents")
    assert len(actions) == 2 and len(intents) == 1
    assert {r["notes"] for r in actions + intents} == {"vault-tls-unverified: VAULT_SKIP_VERIFY=true"}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to name a CA directory's entries")
async def test_a_ca_directory_in_vault_capath_is_used_too(
    vault_settings: Callable[..., Settings], https_vault: FakeVault, ca: trustme.CA, tmp_path: Path
) -> None:
    capath = tmp_path / "cas"
    capath.mkdir()
    pem = _pem(ca, capath / "planner-ca.pem")
    # OpenSSL finds a CA in a directory by the hash of its subject: `<hash>.0`, as c_rehash names it.
    subject_hash = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pem)], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    (capath / f"{subject_hash}.0").symlink_to(pem)
    result, output = await call_once(
        vault_settings({"addr": https_vault.addr, "capath": capath}), "read_docs", {"name": "vm-provisioning"}
    )
    assert not result.is_error, output["error"]
