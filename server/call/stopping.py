"""Whether this process is stopping, and at what signal: a call cut short by a stop is recorded as that.

A stop is process-wide by nature (a signal reaches the process, not a call), so this is one flag, set once by
whatever serves the process and read by the gate when a call is cancelled.
"""

__all__ = ["begin_stop", "stop_reason"]

_reason: str | None = None


def begin_stop(why: str) -> None:
    """Say the process is stopping, and why (e.g. "SIGTERM"); the first reason given stays."""
    global _reason
    if _reason is None:
        _reason = why


def stop_reason() -> str | None:
    """Why the process is stopping, or None while it is not."""
    return _reason
