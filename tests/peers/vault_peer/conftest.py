"""The Vault peer's tests: a peer with a planner policy and two tokens, a real hvac client bound to it, and the
same peer over HTTPS with a CA made by the test."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hvac
import hvac.exceptions
import pytest
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


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_vault(ca: trustme.CA) -> Iterator[FakeVault]:
    with FakeVault.over_https(ca) as server:
        server.add_token(TOKEN, policies=["root"])
        server.put("docs/a", {"k": "tls"})
        yield server
