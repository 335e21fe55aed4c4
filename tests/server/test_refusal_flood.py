"""Refusals cannot flood the ledger: a refused call's arguments are kept as a bounded excerpt and a digest.

Before, each refusal kept up to 64 KiB of whatever the caller sent, so a few hundred refusals filled a ledger
under a size cap and locked every caller out.
"""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from server import Settings
from server.governance.envelope import MAX_REFUSED_ARGUMENT_BYTES
from tests.conftest import call, call_once, connect, rows

pytestmark = pytest.mark.anyio

_AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


async def test_a_refused_calls_large_arguments_are_kept_as_an_excerpt_with_their_size_and_digest(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    arguments = {"host": "pve01", "command": "x" * 60_000}
    result, output = await call_once(make_settings(), "ssh", arguments)
    assert result.is_error and output["error"]["type"] == "FORBIDDEN_ACTION"
    [row] = rows(ledger_path)
    kept = json.loads(row["arguments"])
    text = json.dumps(arguments, sort_keys=True, ensure_ascii=False).encode()
    assert kept["_bytes"] == len(text) and kept["_sha256"] == hashlib.sha256(text).hexdigest()
    assert kept["_excerpt"] == text[:MAX_REFUSED_ARGUMENT_BYTES].decode()
    assert len(row["arguments"]) < 2 * MAX_REFUSED_ARGUMENT_BYTES


async def test_short_refused_arguments_are_kept_whole(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    async with connect(make_settings()) as client:
        await call(client, "ssh", {"host": "pve01", "command": "reboot"})
    assert json.loads(rows(ledger_path)[0]["arguments"]) == {"host": "pve01", "command": "reboot"}


async def test_a_secret_cut_by_the_excerpt_is_not_kept_in_part(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    # The key straddles the excerpt's end: cut first and scrubbed after, its first half would be kept.
    prefix = MAX_REFUSED_ARGUMENT_BYTES - len('{"a": "') - 11
    arguments = {"a": "y" * prefix + " " + _AWS_KEY, "b": "z" * 2000}
    async with connect(make_settings()) as client:
        await call(client, "ssh", arguments)
    stored = b"".join(p.read_bytes() for p in ledger_path.parent.iterdir())
    assert _AWS_KEY[:10].encode() not in stored and _AWS_KEY[-10:].encode() not in stored


async def test_hundreds_of_large_refusals_leave_a_capped_ledger_serving(
    make_settings: Callable[..., Settings], ledger_path: Path
) -> None:
    settings = make_settings(ledger_max_bytes=2 * 1024 * 1024)
    async with connect(settings) as client:
        for n in range(400):
            _, refused = await call(client, f"ssh-{n}", {"payload": "p" * 60_000})
            assert refused["error"]["type"] == "FORBIDDEN_ACTION"
        result, output = await call(client, "read_docs", {"name": "backup-restore"})
    assert not result.is_error and output["decision"] == "EXECUTE"
    assert ledger_path.stat().st_size < 1024 * 1024
