"""FakeVault's tokens and AppRole logins behave for the real hvac client as Vault's do."""

from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests

from tests.peers.vault_peer.conftest import CLIENT_TIMEOUT, ROOT, TOKEN, read, vault_client
from tests.peers.vault_server import FakeVault

# -- tokens -----------------------------------------------------------------


def test_a_missing_or_unknown_token_is_forbidden_and_a_bearer_token_is_accepted(vault: FakeVault) -> None:
    vault.put("docs/a", {"k": 1})

    for token in (None, "t-unknown"):
        with vault_client(vault, token) as c, pytest.raises(hvac.exceptions.Forbidden):
            read(c, "docs/a")
    with requests.Session() as session:
        answer = session.get(
            f"{vault.addr}/v1/secret/data/docs/a", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=CLIENT_TIMEOUT
        )

    assert answer.status_code == 200
    assert answer.json()["data"]["data"] == {"k": 1}


def test_lookup_self_describes_the_token(vault: FakeVault, client: Any) -> None:
    data = client.auth.token.lookup_self()["data"]

    assert data["id"] == TOKEN
    assert data["accessor"].startswith("acc-")
    assert data["policies"] == ["default", "planner"]
    assert 3590 <= data["ttl"] <= 3600
    assert (data["creation_ttl"], data["renewable"], data["display_name"], data["type"]) == (
        3600,
        True,
        "token",
        "service",
    )
    assert data["expire_time"].endswith("Z")


def test_a_token_with_ttl_zero_never_expires(vault: FakeVault) -> None:
    with vault_client(vault, ROOT) as root:
        data = root.auth.token.lookup_self()["data"]

    assert (data["ttl"], data["expire_time"], data["policies"]) == (0, None, ["root"])


def test_ageing_a_token_shortens_its_remaining_ttl_until_it_expires(vault: FakeVault, client: Any) -> None:
    vault.age(TOKEN, 3000)
    assert 590 <= client.auth.token.lookup_self()["data"]["ttl"] <= 600

    vault.age(TOKEN, 600)
    assert not client.is_authenticated()


def test_renew_self_extends_a_renewable_token_by_its_ttl_or_the_increment(vault: FakeVault, client: Any) -> None:
    vault.add_token("t-short", ttl=60)

    with vault_client(vault, "t-short") as c:
        renewed = c.auth.token.renew_self()["auth"]
        incremented = c.auth.token.renew_self(increment="2h")["auth"]
        remaining = c.auth.token.lookup_self()["data"]["ttl"]

    assert renewed["client_token"] == "t-short"
    assert renewed["renewable"] is True
    assert renewed["policies"] == ["default", "planner"]
    assert 55 <= renewed["lease_duration"] <= 60
    assert 7190 <= incremented["lease_duration"] <= 7200
    assert 7190 <= remaining <= 7200
    assert vault.requests_to("auth/token/renew-self")[1].json == {"increment": "2h"}


def test_a_token_that_is_not_renewable_cannot_be_renewed(vault: FakeVault) -> None:
    vault.add_token("t-fixed", renewable=False)

    with vault_client(vault, "t-fixed") as c, pytest.raises(hvac.exceptions.InvalidRequest) as caught:
        c.auth.token.renew_self()

    assert caught.value.errors == ["lease is not renewable"]


def test_an_expired_or_revoked_token_is_forbidden_everywhere(vault: FakeVault, client: Any) -> None:
    vault.put("docs/a", {})
    vault.add_token("t-revoked")
    assert client.is_authenticated()

    vault.expire(TOKEN)
    vault.revoke("t-revoked")

    for token in (TOKEN, "t-revoked"):
        with vault_client(vault, token) as c:
            assert not c.is_authenticated()
            with pytest.raises(hvac.exceptions.Forbidden):
                read(c, "docs/a")
            with pytest.raises(hvac.exceptions.Forbidden):
                c.auth.token.renew_self()
    with pytest.raises(KeyError):
        vault.expire("t-never-added")


# -- AppRole ----------------------------------------------------------------


def test_an_approle_login_issues_a_fresh_token_that_reads_with_the_role_policies(vault: FakeVault) -> None:
    vault.add_approle("role-1", "secret-1", ttl=600)
    vault.put("docs/a", {"k": "v"})

    with vault_client(vault, None) as c:
        auth = c.auth.approle.login(role_id="role-1", secret_id="secret-1")["auth"]
        secret = read(c, "docs/a")
        data = c.auth.token.lookup_self()["data"]

    token = auth["client_token"]
    assert token.startswith("hvs.CAES")
    assert len(token) >= len("hvs.CAES") + 24
    assert vault.issued_tokens == [token]
    assert (auth["lease_duration"], auth["renewable"], auth["metadata"]) == (600, True, {"role_name": "role-1"})
    assert auth["policies"] == ["default", "planner"]
    assert secret["data"]["data"] == {"k": "v"}
    assert (data["id"], data["display_name"], data["creation_ttl"]) == (token, "approle", 600)
    assert vault.requests_to("secret/data/docs/a")[0].headers["x-vault-token"] == token


def test_an_approle_on_another_mount_logs_in_there_and_each_login_gets_a_new_token(vault: FakeVault) -> None:
    vault.add_approle("role-2", "secret-2", mount="ci")

    with vault_client(vault, None) as c:
        first = c.auth.approle.login(role_id="role-2", secret_id="secret-2", mount_point="ci")
        second = c.auth.approle.login(role_id="role-2", secret_id="secret-2", mount_point="ci")

    issued = [first["auth"]["client_token"], second["auth"]["client_token"]]
    assert vault.issued_tokens == issued
    assert issued[0] != issued[1]


def test_wrong_approle_credentials_are_an_invalid_request(vault: FakeVault) -> None:
    vault.add_approle("role-1", "secret-1")

    with vault_client(vault, None) as c:
        for role_id, secret_id in (("role-1", "wrong"), ("nobody", "secret-1")):
            with pytest.raises(hvac.exceptions.InvalidRequest) as caught:
                c.auth.approle.login(role_id=role_id, secret_id=secret_id)
            assert caught.value.errors == ["invalid role or secret ID"]

    assert vault.issued_tokens == []
