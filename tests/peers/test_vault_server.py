"""The FakeVault test peer behaves like a Vault server for the real hvac client."""

import http.client
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests
import trustme

from tests.peers.vault_server import FakeVault

# Every client call is bounded: no test can wait longer than this on the peer.
CLIENT_TIMEOUT = 5.0
TOKEN = "t-planner"
ROOT = "t-root"
PLANNER_RULES = {
    "secret/data/docs/*": ["read"],
    "secret/metadata/docs/": ["list"],
    "secret/metadata/docs/*": ["list"],
}


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as server:
        server.add_policy("planner", PLANNER_RULES)
        server.add_token(TOKEN)
        server.add_token(ROOT, policies=["root"], ttl=0)
        yield server


@contextmanager
def vault_client(vault: FakeVault, token: str | None = TOKEN, **kw: Any) -> Iterator[Any]:
    """A real hvac client for ``vault`` whose HTTP session is closed afterwards."""
    kw.setdefault("verify", False)
    kw.setdefault("timeout", CLIENT_TIMEOUT)
    client = hvac.Client(url=vault.addr, token=token, **kw)
    try:
        yield client
    finally:
        client.adapter.close()


@pytest.fixture
def client(vault: FakeVault) -> Iterator[Any]:
    with vault_client(vault) as c:
        yield c


def read(client: Any, path: str, **kw: Any) -> Any:
    return client.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True, **kw)


# -- KV v2 ----------------------------------------------------------------


def test_a_secret_reads_at_its_latest_version_or_at_the_one_asked_for(vault: FakeVault, client: Any) -> None:
    assert vault.put("docs/db", {"password": "old"}) == 1
    assert vault.put("docs/db", {"password": "new", "user": "planner"}) == 2

    latest = read(client, "docs/db")
    first = read(client, "docs/db", version=1)

    assert latest["data"]["data"] == {"password": "new", "user": "planner"}
    metadata = latest["data"]["metadata"]
    assert metadata["version"] == 2
    assert (metadata["deletion_time"], metadata["destroyed"], metadata["custom_metadata"]) == ("", False, None)
    assert metadata["created_time"].endswith("Z")
    assert (latest["lease_id"], latest["renewable"], latest["auth"]) == ("", False, None)
    assert first["data"]["data"] == {"password": "old"}
    assert first["data"]["metadata"]["version"] == 1


def test_a_secret_put_on_another_mount_is_read_from_that_mount(vault: FakeVault) -> None:
    vault.put("app", {"k": "v"}, mount="kv")

    with vault_client(vault, ROOT) as c:
        assert read(c, "app", mount_point="kv")["data"]["data"] == {"k": "v"}
        with pytest.raises(hvac.exceptions.InvalidPath):
            read(c, "app")


def test_a_missing_secret_or_version_is_invalid_path_with_an_empty_error_list(vault: FakeVault, client: Any) -> None:
    vault.put("docs/db", {"password": "x"})

    with pytest.raises(hvac.exceptions.InvalidPath) as missing:
        read(client, "docs/nope")
    with pytest.raises(hvac.exceptions.InvalidPath):
        read(client, "docs/db", version=7)

    assert missing.value.errors == []


def test_a_folder_lists_its_immediate_children_with_subfolders_marked(vault: FakeVault, client: Any) -> None:
    for path in ("docs/b", "docs/a", "docs/sub/c", "docs/sub/deeper/d", "other/x"):
        vault.put(path, {"k": path})

    assert client.secrets.kv.v2.list_secrets("docs")["data"]["keys"] == ["a", "b", "sub/"]
    assert client.secrets.kv.v2.list_secrets("docs/sub/")["data"]["keys"] == ["c", "deeper/"]
    with vault_client(vault, ROOT) as root:
        assert root.secrets.kv.v2.list_secrets("")["data"]["keys"] == ["docs/", "other/"]
    assert [r.method for r in vault.requests_to("secret/metadata/")] == ["LIST", "LIST"]


def test_a_list_sent_as_get_with_list_true_is_answered_too(vault: FakeVault) -> None:
    vault.put("docs/a", {})

    with vault_client(vault, TOKEN, strict_http=True) as c:
        keys = c.secrets.kv.v2.list_secrets("docs")["data"]["keys"]

    assert keys == ["a"]
    assert vault.requests[-1].method == "GET"
    assert vault.requests[-1].query == {"list": "true"}


def test_an_empty_folder_lists_as_invalid_path(vault: FakeVault, client: Any) -> None:
    vault.put("docs/a", {})

    with pytest.raises(hvac.exceptions.InvalidPath) as caught:
        client.secrets.kv.v2.list_secrets("docs/empty")

    assert caught.value.errors == []


# -- policies ---------------------------------------------------------------


def test_a_read_outside_the_token_policies_is_forbidden(vault: FakeVault, client: Any) -> None:
    vault.put("other/db", {"password": "x"})
    vault.put("docs/a", {})

    with pytest.raises(hvac.exceptions.Forbidden) as caught:
        read(client, "other/db")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.list_secrets("other")

    assert caught.value.errors == ["permission denied"]


def test_a_policy_check_comes_before_not_found_on_an_unknown_route(vault: FakeVault, client: Any) -> None:
    with pytest.raises(hvac.exceptions.Forbidden):
        read(client, "app", mount_point="kv")
    with vault_client(vault, ROOT) as root, pytest.raises(hvac.exceptions.InvalidPath) as caught:
        read(root, "app", mount_point="kv")

    assert caught.value.errors == ['no handler for route "kv/data/app"']


def test_capabilities_self_reports_each_path_with_deny_when_nothing_matches(vault: FakeVault) -> None:
    vault.add_policy("mixed", {"secret/data/*": ["read", "list"], "secret/data/locked": ["deny"]})
    vault.add_token("t-mixed", policies=["mixed", "planner"])
    paths = ["secret/data/docs/a", "secret/data/locked", "sys/mounts"]

    with vault_client(vault, "t-mixed") as c:
        answer = c.sys.get_capabilities(paths)
    with vault_client(vault, ROOT) as root:
        root_answer = root.sys.get_capabilities(["secret/data/anything"])

    assert answer["capabilities"] == ["list", "read"]
    assert {p: answer[p] for p in paths} == {
        "secret/data/docs/a": ["list", "read"],
        "secret/data/locked": ["deny"],
        "sys/mounts": ["deny"],
    }
    assert root_answer["capabilities"] == ["root"]


def test_the_most_specific_rule_of_a_policy_wins(vault: FakeVault) -> None:
    vault.add_policy("narrow", {"secret/data/*": ["read"], "secret/data/hidden/*": ["deny"]})
    vault.add_token("t-narrow", policies=["narrow"])
    vault.put("open", {"k": 1})
    vault.put("hidden/key", {"k": 2})

    with vault_client(vault, "t-narrow") as c:
        assert read(c, "open")["data"]["data"] == {"k": 1}
        with pytest.raises(hvac.exceptions.Forbidden):
            read(c, "hidden/key")


def test_a_plus_in_a_policy_path_matches_exactly_one_segment(vault: FakeVault) -> None:
    vault.add_policy("segment", {"secret/data/docs/+": ["read"], "secret/data/+/shared": ["read"]})
    vault.add_token("t-segment", policies=["segment"])
    for path in ("docs/a", "docs/sub/b", "team/shared", "team/private"):
        vault.put(path, {"path": path})

    with vault_client(vault, "t-segment") as c:
        assert read(c, "docs/a")["data"]["data"] == {"path": "docs/a"}
        assert read(c, "team/shared")["data"]["data"] == {"path": "team/shared"}
        for denied in ("docs/sub/b", "team/private"):
            with pytest.raises(hvac.exceptions.Forbidden):
                read(c, denied)


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


# -- seal, health and injected faults ----------------------------------------


def test_health_and_seal_status_answer_without_a_token(vault: FakeVault) -> None:
    with vault_client(vault, None) as c:
        health = c.sys.read_health_status(method="GET")
        seal = c.sys.read_seal_status()

    assert health == {
        "initialized": True,
        "sealed": False,
        "standby": False,
        "version": "1.17.2",
        "cluster_name": "fake",
    }
    assert (seal["type"], seal["sealed"], seal["t"], seal["n"], seal["progress"]) == ("shamir", False, 1, 1, 0)


def test_a_sealed_vault_says_so_in_health_and_refuses_everything_else(vault: FakeVault, client: Any) -> None:
    vault.put("docs/a", {"k": 1})
    vault.add_approle("role-1", "secret-1")
    vault.sealed = True

    health = client.sys.read_health_status(method="GET")
    assert health.status_code == 503
    assert health.json()["sealed"] is True
    assert client.sys.is_sealed() is True
    with pytest.raises(hvac.exceptions.VaultDown) as caught:
        read(client, "docs/a")
    assert caught.value.errors == ["Vault is sealed"]
    with pytest.raises(hvac.exceptions.VaultDown):
        client.auth.token.lookup_self()
    with pytest.raises(hvac.exceptions.VaultDown):
        client.auth.approle.login(role_id="role-1", secret_id="secret-1", use_token=False)

    vault.sealed = False
    assert read(client, "docs/a")["data"]["data"] == {"k": 1}


def test_fail_next_fails_only_the_next_kv_requests_before_any_token_check(vault: FakeVault, client: Any) -> None:
    vault.put("docs/a", {"k": 1})
    vault.fail_next(500, count=2)

    assert client.auth.token.lookup_self()["data"]["id"] == TOKEN  # auth/ and sys/ are spared
    assert client.sys.read_health_status(method="GET")["sealed"] is False
    with pytest.raises(hvac.exceptions.InternalServerError) as caught:
        read(client, "docs/a")
    with vault_client(vault, "t-unknown") as stranger, pytest.raises(hvac.exceptions.InternalServerError):
        read(stranger, "docs/a")

    assert caught.value.errors == ["FakeVault: injected failure (HTTP 500)"]
    assert read(client, "docs/a")["data"]["data"] == {"k": 1}


def test_a_delay_longer_than_the_client_timeout_times_the_client_out(vault: FakeVault) -> None:
    vault.put("docs/a", {"k": 1})
    vault.delay = 0.3

    with vault_client(vault, TOKEN, timeout=0.1) as c, pytest.raises(requests.exceptions.ReadTimeout):
        read(c, "docs/a")
    with vault_client(vault, TOKEN) as c:
        started = time.monotonic()
        assert read(c, "docs/a")["data"]["data"] == {"k": 1}
        assert time.monotonic() - started >= 0.3


def test_close_does_not_wait_for_a_delayed_answer() -> None:
    with FakeVault() as server:
        server.add_token(TOKEN, policies=["root"])
        server.delay = 30.0
        with vault_client(server, TOKEN, timeout=0.1) as c, pytest.raises(requests.exceptions.ReadTimeout):
            c.auth.token.lookup_self()
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 1.5
        assert server.closed


def test_a_stopped_vault_refuses_connections_and_restarts_on_the_same_port_with_its_state(
    vault: FakeVault, client: Any
) -> None:
    vault.put("docs/a", {"k": 1})
    assert read(client, "docs/a")["data"]["data"] == {"k": 1}  # leaves a pooled keep-alive connection
    port = vault.port

    vault.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        read(client, "docs/a")
    with requests.Session() as session, pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"{vault.addr}/v1/sys/health", timeout=CLIENT_TIMEOUT)

    vault.start()
    assert vault.port == port
    assert read(client, "docs/a")["data"]["data"] == {"k": 1}
    assert len(vault.requests_to("secret/data/docs/a")) == 2  # the refused attempt never arrived


def test_an_unstarted_or_closed_vault_says_so() -> None:
    server = FakeVault()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.addr
    server.close()
    with pytest.raises(RuntimeError, match="closed"):
        server.start()


# -- HTTPS ------------------------------------------------------------------


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_vault(ca: trustme.CA) -> Iterator[FakeVault]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with FakeVault(ssl_context=context) as server:
        server.add_token(TOKEN, policies=["root"])
        server.put("docs/a", {"k": "tls"})
        yield server


def test_https_verifies_against_the_issuing_ca(tls_vault: FakeVault, ca: trustme.CA, tmp_path: Path) -> None:
    ca_pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))

    assert tls_vault.addr.startswith("https://127.0.0.1:")
    with vault_client(tls_vault, TOKEN, verify=str(ca_pem)) as c:
        assert read(c, "docs/a")["data"]["data"] == {"k": "tls"}
        assert read(c, "docs/a")["data"]["metadata"]["version"] == 1


def test_https_with_another_ca_fails_verification_and_the_server_keeps_serving(
    tls_vault: FakeVault, ca: trustme.CA, tmp_path: Path
) -> None:
    other_pem, good_pem = tmp_path / "other.pem", tmp_path / "good.pem"
    trustme.CA().cert_pem.write_to_path(str(other_pem))
    ca.cert_pem.write_to_path(str(good_pem))

    with vault_client(tls_vault, TOKEN, verify=str(other_pem)) as c, pytest.raises(requests.exceptions.SSLError):
        read(c, "docs/a")
    with requests.Session() as session, pytest.raises(requests.exceptions.ConnectionError):
        session.get(f"http://127.0.0.1:{tls_vault.port}/v1/sys/health", timeout=CLIENT_TIMEOUT)
    with vault_client(tls_vault, TOKEN, verify=str(good_pem)) as c:
        assert read(c, "docs/a")["data"]["data"] == {"k": "tls"}

    assert [r.path for r in tls_vault.requests] == ["secret/data/docs/a"]


# -- recording and wire format ----------------------------------------------


def test_every_request_is_recorded_with_its_path_query_headers_and_body(vault: FakeVault) -> None:
    vault.put("docs/a", {"k": 1})

    with vault_client(vault, TOKEN, namespace="team-a") as c:
        read(c, "docs/a", version=1)
        c.sys.get_capabilities(["secret/data/docs/a"])

    get, post = vault.requests
    assert (get.method, get.path, get.query, get.json) == ("GET", "secret/data/docs/a", {"version": "1"}, None)
    assert get.headers["x-vault-namespace"] == "team-a"
    assert get.headers["x-vault-token"] == TOKEN
    assert get.headers["x-vault-request"] == "true"
    assert (post.method, post.path, post.json) == ("POST", "sys/capabilities-self", {"paths": ["secret/data/docs/a"]})
    assert vault.requests_to("sys/") == [post]

    vault.reset_requests()
    assert vault.requests == []


def test_answers_are_json_with_content_length_over_one_keep_alive_connection(vault: FakeVault) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", vault.port, timeout=CLIENT_TIMEOUT)
    answers, sockets = [], []
    try:
        for path in ("/v1/sys/health", "/v1/secret/data/docs/a"):
            conn.request("GET", path, headers={"X-Vault-Token": TOKEN})
            response = conn.getresponse()
            body = response.read()
            answers.append((response.status, response.getheader("Content-Type"), body))
            assert response.getheader("Content-Length") == str(len(body))
            sockets.append(conn.sock)
    finally:
        conn.close()

    assert sockets[0] is sockets[1]  # the server kept the connection open for the second request
    assert [(status, content_type) for status, content_type, _ in answers] == [
        (200, "application/json"),
        (404, "application/json"),
    ]
    assert answers[1][2] == b'{"errors": ["no handler for route \\"secret/data/docs/a\\""]}'
