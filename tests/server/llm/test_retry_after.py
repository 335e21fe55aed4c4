"""Reading the wait an endpoint asks for: OpenAI's retry-after-ms, Retry-After in seconds or as an HTTP date."""

from datetime import UTC, datetime

import pytest

from server.llm.retries import retry_after_s

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # the finer one wins
        ({"Retry-After": "Tue, 24 Nov 2026 12:00:03 GMT"}, 3.0),
        ({"Retry-After": "Tue, 24 Nov 2026 11:59:00 GMT"}, 0.0),  # a date in the past: now
        ({"retry-after-ms": "soon", "Retry-After": "1"}, 1.0),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "whenever"}, None),
        ({}, None),
    ],
)
def test_the_wait_the_endpoint_asked_for(headers: dict[str, str], wait: float | None) -> None:
    assert retry_after_s(headers, now=NOW) == wait
