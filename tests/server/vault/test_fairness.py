"""Many calls at once against a slow Vault: waiting for a thread is not Vault's failure, and no caller takes all.

The circuit breaker counts only requests that reached Vault and failed there; a call that waited too long for
a thread sent nothing (VAULT_BUSY). Each caller has a share of the store's threads, so one caller's flood
leaves a thread for the next caller's read.
"""

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from server import Settings
from server.call.failures import ToolFailure
from server.stores import VaultStore
from server.vault import VaultConfig
from tests.conftest import call, connect, until
from tests.peers.vault_server import FakeVault
from tests.vault_seed import RUNBOOK

pytestmark = pytest.mark.anyio

_FLOOD = 60
_NOT_AN_OUTAGE = {"NOT_FOUND", "VAULT_BUSY"}


async def test_a_flood_of_slow_reads_does_not_open_the_breaker_for_the_reads_after_it(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.delay = 0.6  # each answer well inside the timeout
    kinds: list[str] = []
    async with connect(vault_settings({"timeout_s": 1.0})) as client:

        async def missing(i: int) -> None:
            _, output = await call(client, "read_docs", {"name": f"missing-{i}"})
            kinds.append(output["error"]["type"])

        async with anyio.create_task_group() as flood:
            for i in range(_FLOOD):
                flood.start_soon(missing, i)
        result, output = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert set(kinds) <= _NOT_AN_OUTAGE, sorted(kinds)
    assert not result.is_error, output["error"]
    assert output["data"]["content"] == RUNBOOK


def _as(client_id: str) -> None:
    """Make the current task's calls those of an OAuth client, as the SDK's auth middleware does."""
    token = AccessToken(token=f"opaque-{client_id}", client_id=client_id, scopes=[], subject=client_id)
    auth_context_var.set(AuthenticatedUser(token))


async def test_one_callers_flood_leaves_another_caller_a_thread(
    vault_config: Callable[..., VaultConfig], vault: FakeVault
) -> None:
    vault.delay = 0.6
    store = VaultStore(vault_config(timeout_s=1.0), learn_secret=lambda *_: None)
    kinds: list[str] = []
    other: dict[str, Any] = {}

    async def flooding(i: int) -> None:
        _as("flooder")
        try:
            await store.read_doc(f"missing-{i}")
        except ToolFailure as failure:
            kinds.append(failure.kind)

    async def reading() -> None:
        _as("reader")
        try:
            other["content"] = (await store.read_doc("vm-provisioning")).content
        except ToolFailure as failure:
            other["failure"] = failure.kind

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for i in range(_FLOOD):
                    group.start_soon(flooding, i)
                await until(lambda: len(vault.requests_to("secret/data/docs/missing-")) >= 2)
                group.start_soon(reading)
    finally:
        await store.aclose()
    assert other == {"content": RUNBOOK}
    assert set(kinds) <= _NOT_AN_OUTAGE, sorted(kinds)
    # Sent while the flood still held no more than its share: it did not wait for the flood's threads to free.
    sent = [r.path for r in vault.requests_to("secret/data/docs/")]
    assert sent.index("secret/data/docs/vm-provisioning") < 8, sent[:10]
