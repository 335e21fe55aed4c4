"""Request ids: version-4 UUIDs as 32 hex digits, drawn from the system's randomness a batch at a time.

`uuid.uuid4()` asks the kernel for 16 bytes on every call, a system call that cost more than anything else
in taking a call (measured with `python -m bench --only reads`). The bits are the same kind (the system's
CSPRNG, via `os.urandom`), only fetched 4 KiB at a time; a child process made by `fork` starts a batch of its
own rather than reuse its parent's.
"""

import os
import threading

__all__ = ["request_id"]

_BATCH = 4096
_VERSION_4 = (0xF000 << 64) | (0xC000 << 48), (0x4000 << 64) | (0x8000 << 48)
"""Bits to clear and to set: version 4, and the RFC 4122 variant, as `uuid.uuid4()` sets them."""


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def take(self) -> int:
        with self._lock:
            at = self._at
            if at + 16 > len(self._bytes):
                self._bytes, at = os.urandom(_BATCH), 0
            self._at = at + 16
            return int.from_bytes(self._bytes[at : at + 16], "big")

    def forget(self) -> None:
        self._bytes, self._at = b"", 0


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.forget)


def request_id() -> str:
    """A new random request id, as `uuid.uuid4().hex` spells one."""
    clear, set_ = _VERSION_4
    return f"{(_POOL.take() & ~clear) | set_:032x}"
