"""Vault failing in each way it can: a specific error with an action, bounded time, and service resumed after."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from server import Settings
from server.call.failures import ToolFailure
from server.stores import VaultStore
from server.vault import VaultConfig
from tests.clock import ManualClock
from tests.conftest import call, call_once, connect, rows
from tests.peers.vault_server import FakeVault
from tests.vault_seed import RUNBOOK, TOKEN

pytestmark = pytest.mark.anyio


async def test_a_missing_entry_is_not_found_and_points_to_list_docs(vault_settings: Callable[..., Settings]) -> None:
    result, output = await call_once(vault_settings(), "read_docs", {"name": "no-such-runbook"})
    assert result.is_error and output["error"]["type"] == "NOT_FOUND"
    assert "list_docs" in output["error"]["recommended_action"]


async def test_a_path_the_policy_denies_is_permission_denied_with_the_policy_to_apply(
    vault_settings: Callable[..., Settings], vault: FakeVault, ledger_path: Path
) -> None:
    vault.add_policy("docs-only", {"secret/data/docs/+": ["read"]})
    vault.add_token("docs-only-token-opaque-55", policies=["docs-only"])
    async with connect(vault_settings({"token": "docs-only-token-opaque-55"})) as client:
        _, denied = await call(client, "read_inventory")
        _, allowed = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert denied["error"]["type"] == "VAULT_PERMISSION_DENIED"
    assert "secret/inventory/proxmox" in denied["error"]["message"]
    assert "planner-mcp vault-policy" in denied["error"]["recommended_action"]
    assert allowed["data"]["content"] == RUNBOOK  # the token is fine; only that path is denied
    assert [r["error_type"] for r in rows(ledger_path)] == ["VAULT_PERMISSION_DENIED", None]


async def test_a_sealed_vault_says_so_and_calls_succeed_once_it_is_unsealed(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    async with connect(vault_settings()) as client:
        vault.sealed = True
        result, sealed = await call(client, "read_docs", {"name": "vm-provisioning"})
        vault.sealed = False
        _, healed = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert result.is_error and sealed["error"]["type"] == "VAULT_SEALED"
    assert "unseal" in sealed["error"]["recommended_action"]
    assert healed["data"]["content"] == RUNBOOK


async def test_a_vault_that_is_down_is_unreachable_and_is_used_again_when_it_is_back(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    async with connect(vault_settings()) as client:
        vault.stop()
        _, down = await call(client, "read_docs", {"name": "vm-provisioning"})
        vault.start()
        _, back = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert down["error"]["type"] == "VAULT_UNREACHABLE"
    assert "VAULT_ADDR" in down["error"]["recommended_action"]
    assert back["data"]["content"] == RUNBOOK


async def test_a_slow_vault_times_out_within_the_configured_time(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.delay = 3
    async with connect(vault_settings({"timeout_s": 0.3, "retries": 0})) as client:
        started = time.monotonic()
        _, slow = await call(client, "read_docs", {"name": "vm-provisioning"})
        elapsed = time.monotonic() - started
        vault.delay = 0
        _, fast = await call(client, "read_docs", {"name": "vm-provisioning"})
    assert slow["error"]["type"] == "VAULT_TIMEOUT"
    assert "PLANNER_MCP_VAULT_TIMEOUT" in slow["error"]["recommended_action"]
    assert elapsed < 2.5  # bounded by the timeout, not by Vault (a loose bound: this is not a benchmark)
    assert fast["data"]["content"] == RUNBOOK


async def test_a_transient_server_error_is_retried_and_the_call_succeeds(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.fail_next(502)
    result, output = await call_once(vault_settings({"retries": 1}), "read_docs", {"name": "vm-provisioning"})
    assert not result.is_error and output["data"]["content"] == RUNBOOK
    assert len(vault.requests_to("secret/data/docs/vm-provisioning")) == 2


async def test_retries_are_bounded(vault_settings: Callable[..., Settings], vault: FakeVault) -> None:
    vault.fail_next(500, count=10)
    _, output = await call_once(vault_settings({"retries": 2}), "read_docs", {"name": "vm-provisioning"})
    assert output["error"]["type"] == "VAULT_ERROR" and "500" in output["error"]["message"]
    assert len(vault.requests_to("secret/data/docs/vm-provisioning")) == 3


async def test_a_denial_is_not_retried(vault_settings: Callable[..., Settings], vault: FakeVault) -> None:
    vault.fail_next(403)
    _, output = await call_once(vault_settings({"retries": 3}), "read_docs", {"name": "vm-provisioning"})
    # The token itself is fine (lookup-self answers), so this is the policy's answer: final.
    assert output["error"]["type"] == "VAULT_PERMISSION_DENIED"
    assert len(vault.requests_to("secret/data/docs/vm-provisioning")) == 1


async def test_after_repeated_outages_calls_fail_fast_until_vault_answers_again(
    vault_config: Callable[..., VaultConfig], vault: FakeVault
) -> None:
    clock = ManualClock()
    config = vault_config(breaker_failures=2, breaker_cooldown_s=30, retries=0)
    store = VaultStore(config, learn_secret=lambda *_: None, clock=clock)
    try:
        vault.sealed = True
        kinds = []
        for _ in range(2):
            with pytest.raises(ToolFailure) as failure:
                await store.read_doc("vm-provisioning")
            kinds.append(failure.value.kind)
        vault.reset_requests()
        with pytest.raises(ToolFailure) as fast:
            await store.read_doc("vm-provisioning")
        assert vault.requests == []  # open: nothing was sent
        assert kinds == ["VAULT_SEALED", "VAULT_SEALED"]
        assert fast.value.kind == "VAULT_UNAVAILABLE"
        assert "2 times in a row" in fast.value.message and "VAULT_SEALED" in fast.value.message

        vault.sealed = False
        clock.now += 31  # the cooldown has passed: one trial call goes through, and closes the breaker
        entry = await store.read_doc("vm-provisioning")
        assert entry.content == RUNBOOK and store.breaker.state == "closed"
    finally:
        await store.aclose()


async def test_a_failed_trial_call_opens_the_breaker_again(
    vault_config: Callable[..., VaultConfig], vault: FakeVault
) -> None:
    clock = ManualClock()
    store = VaultStore(vault_config(breaker_failures=1, retries=0), learn_secret=lambda *_: None, clock=clock)
    try:
        vault.stop()
        for _ in range(2):
            with pytest.raises(ToolFailure):
                await store.list_docs()
        assert store.breaker.state == "open"
        clock.now += store.config.breaker_cooldown_s + 1
        with pytest.raises(ToolFailure) as trial:
            await store.list_docs()
        assert trial.value.kind == "VAULT_UNREACHABLE" and store.breaker.state == "open"
    finally:
        await store.aclose()


async def test_a_denied_or_missing_entry_does_not_count_as_an_outage(
    vault_config: Callable[..., VaultConfig], vault: FakeVault
) -> None:
    store = VaultStore(vault_config(breaker_failures=1), learn_secret=lambda *_: None)
    try:
        for _ in range(3):
            with pytest.raises(ToolFailure):
                await store.read_doc("no-such-runbook")
        assert store.breaker.state == "closed"
    finally:
        await store.aclose()


async def test_an_oversized_entry_is_refused_with_the_limit(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    vault.put("docs/huge", {"content": "x" * 5000})
    _, output = await call_once(vault_settings(max_document_bytes=1000), "read_docs", {"name": "huge"})
    assert output["error"]["type"] == "TOO_LARGE" and "1000" in output["error"]["message"]


async def test_errors_never_carry_the_token(vault_settings: Callable[..., Settings], vault: FakeVault) -> None:
    async with connect(vault_settings()) as client:
        outputs = []
        for fault in ("sealed", "denied", "down"):
            if fault == "sealed":
                vault.sealed = True
            elif fault == "denied":
                vault.sealed = False
                vault.fail_next(403)
            else:
                vault.stop()
            outputs.append((await call(client, "read_docs", {"name": "vm-provisioning"}))[1])
    assert all(o["error"] for o in outputs)
    assert TOKEN not in str(outputs)
