"""A Vault that bombs or drips: an answer is read up to a cap and a deadline, and the reading stops there.

The memory test runs the store in a child process, so the peak it reports is the reading's own (Linux's
VmHWM, reset just before the read: `ru_maxrss` would carry over the test process's own peak through exec),
and the loopback Vault (here, in the test process) streams its body without ever holding it.
"""

import json
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from server import Settings
from tests.conftest import call, connect, until
from tests.peers.vault_server import FakeVault
from tests.vault_seed import TOKEN

pytestmark = pytest.mark.anyio

_MB = 1024 * 1024
_HEAD = b'{"data": {"metadata": {"version": 1}, "data": {"content": "'


class _Body:
    """A body of `total` bytes of JSON, made a piece at a time, which knows how much of it was taken."""

    def __init__(self, total: int, *, gzip: bool = False) -> None:
        self.total, self.gzip = total, gzip
        self.sent = 0
        self.ended = threading.Event()

    def __call__(self) -> Iterator[bytes]:
        packer = zlib.compressobj(1, wbits=31) if self.gzip else None
        try:
            for piece in self._plain():
                self.sent += len(piece)
                yield packer.compress(piece) if packer else piece
            if packer:
                yield packer.flush()
        finally:
            self.ended.set()

    def _plain(self) -> Iterator[bytes]:
        yield _HEAD
        left = self.total - len(_HEAD) - 4
        while left > 0:
            yield b"a" * min(_MB, left)
            left -= _MB
        yield b'"}}}'


async def test_an_answer_over_the_cap_is_too_large_and_no_more_of_it_is_read(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    body = _Body(256 * _MB)
    vault.answer_raw("secret/data/docs/huge", 200, body, headers={"Content-Type": "application/json"})
    async with connect(vault_settings(max_document_bytes=_MB)) as client:
        result, output = await call(client, "read_docs", {"name": "huge"})
        await until(body.ended.is_set)
    assert result.is_error and output["error"]["type"] == "TOO_LARGE", output["error"]
    assert "huge" in output["error"]["message"]
    assert body.sent < 64 * _MB  # the cap is a few MB; what was sent beyond it sat in socket buffers


async def test_a_compressed_answer_is_refused_unread(vault_settings: Callable[..., Settings], vault: FakeVault) -> None:
    body = _Body(256 * _MB, gzip=True)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    vault.answer_raw("secret/data/docs/bomb", 200, body, headers=headers)
    async with connect(vault_settings(max_document_bytes=_MB)) as client:
        result, output = await call(client, "read_docs", {"name": "bomb"})
        await until(body.ended.is_set)
    assert result.is_error and output["error"]["type"] == "VAULT_ERROR", output["error"]
    assert "compressed" in output["error"]["message"]
    assert body.sent < 64 * _MB


async def test_a_dripping_answer_ends_at_the_deadline_and_nothing_keeps_reading_it(
    vault_settings: Callable[..., Settings], vault: FakeVault
) -> None:
    ended = threading.Event()

    def drip() -> Iterator[bytes]:
        try:
            yield _HEAD
            while True:
                yield b"a"
        finally:
            ended.set()

    vault.answer_raw("secret/data/docs/drip", 200, drip, headers={"Content-Type": "application/json"}, gap_s=0.05)
    async with connect(vault_settings({"timeout_s": 0.3, "retries": 0})) as client:
        result, output = await call(client, "read_docs", {"name": "drip"})
        # Each byte comes well within the socket timeout: only a deadline the reading checks itself ends it.
        await until(ended.is_set)
    assert result.is_error and output["error"]["type"] == "VAULT_TIMEOUT", output["error"]


_CHILD = """
import anyio, json, re, sys
from pydantic import SecretStr
from server.stores import VaultStore
from server.vault import VaultConfig

def kb(field):
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\\s+(\\d+) kB", status.read(), re.M).group(1))

async def main():
    store = VaultStore(VaultConfig(addr=sys.argv[1], token=SecretStr(sys.argv[2]), retries=0, cache_ttl_s=0),
                       learn_secret=lambda *_: None, max_bytes=4 * 1024 * 1024)
    await store.read_doc("small")  # everything imported and connected before the baseline
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak (VmHWM) starts again from here
    before = kb("VmRSS")
    try:
        await store.read_doc(sys.argv[3])
        kind = None
    except Exception as exc:
        kind = getattr(exc, "kind", type(exc).__name__)
    print(json.dumps({"kind": kind, "grew_kb": kb("VmHWM") - before, "peak_kb": kb("VmHWM")}))

anyio.run(main)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS is read from Linux's /proc")
@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_reading_a_400_mb_answer_does_not_hold_it(vault: FakeVault, gzip: bool, tmp_path: Path) -> None:
    vault.put("docs/small", {"content": "small"})
    headers = {"Content-Type": "application/json", **({"Content-Encoding": "gzip"} if gzip else {})}
    vault.answer_raw("secret/data/docs/huge", 200, _Body(400 * _MB, gzip=gzip), headers=headers)
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, vault.addr, TOKEN, "huge"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[3],
    )
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    print(f"read of a 400 MB answer ({'gzip' if gzip else 'plain'}): {report}")
    assert report["kind"] in ("TOO_LARGE", "VAULT_ERROR")
    assert report["grew_kb"] < 100 * 1024  # memory, not time: the answer is never held whole
