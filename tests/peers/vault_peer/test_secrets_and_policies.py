"""FakeVault reads and lists KV v2 secrets for the real hvac client, as its Vault-style path policies allow."""

from typing import Any

import hvac
import hvac.exceptions
import pytest

from tests.peers.vault_peer.conftest import ROOT, TOKEN, read, vault_client
from tests.peers.vault_server import FakeVault

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
