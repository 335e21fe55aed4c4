"""A Vault that redirects: no credential follows it anywhere, and the caller is told where VAULT_ADDR should point.

A second loopback Vault stands for wherever the redirect points (another port is another origin); it records
whatever reaches it, and nothing may.
"""

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from pydantic import SecretStr

from server import Settings
from tests.conftest import call_once
from tests.peers.vault_server import FakeVault
from tests.vault_seed import ROLE_ID, SECRET_ID, TOKEN, load

pytestmark = pytest.mark.anyio


@pytest.fixture
def elsewhere() -> Iterator[FakeVault]:
    with FakeVault() as server:
        yield server


def _assert_refused_redirect(output: dict[str, object], status: int) -> None:
    error = output["error"]
    assert isinstance(error, dict)
    assert error["type"] == "VAULT_ERROR"
    assert f"HTTP {status}" in error["message"] and "redirect" in error["message"]
    assert "VAULT_ADDR" in error["recommended_action"]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirected_read_sends_the_token_to_no_other_origin(
    vault_settings: Callable[..., Settings], vault: FakeVault, elsewhere: FakeVault, status: int
) -> None:
    target = f"{elsewhere.addr}/v1/secret/data/docs/vm-provisioning"
    vault.answer_raw("secret/data/docs/", status, headers={"Location": target})
    result, output = await call_once(vault_settings(), "read_docs", {"name": "vm-provisioning"})
    assert result.is_error
    _assert_refused_redirect(output, status)
    assert elsewhere.requests == []
    assert len(vault.requests_to("secret/data/docs/vm-provisioning")) == 1  # refused, not retried


async def test_a_redirected_approle_login_sends_the_secret_id_nowhere_again(
    vault_settings: Callable[..., Settings], vault: FakeVault, elsewhere: FakeVault
) -> None:
    vault.add_approle(ROLE_ID, SECRET_ID)
    vault.answer_raw("auth/approle/login", 307, headers={"Location": f"{elsewhere.addr}/v1/auth/approle/login"})
    settings = vault_settings({"token": None, "role_id": ROLE_ID, "secret_id": SecretStr(SECRET_ID)})
    _, output = await call_once(settings, "read_docs", {"name": "vm-provisioning"})
    _assert_refused_redirect(output, 307)
    assert elsewhere.requests == []
    [login] = vault.requests_to("auth/approle/login")  # the login body was sent once, to VAULT_ADDR
    assert login.json == {"role_id": ROLE_ID, "secret_id": SECRET_ID}


async def test_an_https_vault_cannot_downgrade_the_token_to_plain_http(
    vault_settings: Callable[..., Settings], elsewhere: FakeVault, tmp_path: Path
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    cacert = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cacert))
    with FakeVault(ssl_context=context) as https_vault:
        load(https_vault)
        target = f"{elsewhere.addr}/v1/secret/data/docs/vm-provisioning"
        assert target.startswith("http://")
        https_vault.answer_raw("secret/data/docs/", 307, headers={"Location": target})
        _, output = await call_once(
            vault_settings({"addr": https_vault.addr, "cacert": cacert}), "read_docs", {"name": "vm-provisioning"}
        )
        assert https_vault.requests_to("secret/data/docs/")[0].headers["x-vault-token"] == TOKEN
    _assert_refused_redirect(output, 307)
    assert elsewhere.requests == []
