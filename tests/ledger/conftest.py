"""The ledger tests' shared fixtures: copies of real ledgers, written by the server itself through the gate,
one plain and one keyed, for each test to edit as an attacker would."""

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from server import Settings
from tests.conftest import call, connect

KEY = b"0123456789abcdef0123456789abcdef-test-ledger-key"
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("read_docs", {"name": "backup-restore"}),
    ("list_docs", {}),
    ("ssh", {"host": "pve01"}),
    ("read_inventory", {}),
    ("read_docs", {"name": "no-such-runbook"}),
    ("read_docs", {"name": "../secrets"}),
    ("list_docs", {}),
    ("read_inventory", {"name": "proxmox"}),
]


def _write_real_ledger(path: Path, key: bytes | None) -> None:
    """A ledger written by the server itself, through the gate, as a host's calls would write it."""
    key_file = None
    if key is not None:
        key_file = path.parent / "ledger.key"
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_bytes(key)

    async def run() -> None:
        async with connect(Settings(ledger_path=path, ledger_key_file=key_file)) as client:
            for tool, args in CALLS:
                await call(client, tool, args)

    anyio.run(run)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("originals")
    made = {"plain": root / "plain" / "ledger.db", "keyed": root / "keyed" / "ledger.db"}
    _write_real_ledger(made["plain"], None)
    _write_real_ledger(made["keyed"], KEY)
    return made


@pytest.fixture
def plain(originals: dict[str, Path], tmp_path: Path) -> Path:
    return _copy(originals["plain"], tmp_path / "plain.db")


@pytest.fixture
def keyed(originals: dict[str, Path], tmp_path: Path) -> Path:
    return _copy(originals["keyed"], tmp_path / "keyed.db")


def _copy(source: Path, target: Path) -> Path:
    # The server closed the original cleanly, so its WAL is checkpointed into the main file.
    assert not source.with_name(source.name + "-wal").exists()
    shutil.copyfile(source, target)
    return target
