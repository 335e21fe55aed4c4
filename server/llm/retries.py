"""When to try an LLM request again, and how long to wait first: the endpoint's Retry-After, else backoff."""

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE_STATUS", "retry_after_s"]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
"""Statuses that say "not now" rather than "not this request": timeouts, rate limits, overload, failures."""


def retry_after_s(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The wait the endpoint asked for, in seconds: `retry-after-ms` (OpenAI's), then `Retry-After`.

    `Retry-After` may be a number of seconds or an HTTP date. Anything unparseable is ignored (None).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = lowered.get(name, "").strip()
        if not raw:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            if name == "retry-after":
                return _from_date(raw, now or datetime.now(UTC))
            continue
        if value >= 0 and value == value and value != float("inf"):  # not negative, not NaN, not infinite
            return value
    return None


def _from_date(raw: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
