"""FakeVault as a server: health and seal, injected faults and delays, stop and restart, HTTPS, and the
requests it records."""

import http.client
import time
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests
import trustme

from tests.peers.vault_peer.conftest import CLIENT_TIMEOUT, TOKEN, read, vault_client
from tests.peers.vault_server import FakeVault

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
