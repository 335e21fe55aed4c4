"""The deadline of the attempt a worker thread is making, which every request in it keeps.

Set by the store when its thread starts an attempt (so time spent waiting for a thread is not counted) and
read by the transport while it reads an answer; a module of its own, so the store can set it without
importing `requests`, which a server that never talks to Vault must not pay for.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["attempt_deadline", "current_deadline"]

_local = threading.local()


@contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Bound every request this thread makes inside the block, from now: login, renewal and read together."""
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = None


def current_deadline() -> float | None:
    """When this thread's attempt must end (a `time.monotonic()` value), or None outside an attempt."""
    return getattr(_local, "deadline", None)
