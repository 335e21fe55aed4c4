"""Refused HTTP requests: every refusal leaves a log line saying why, from where and for what (never the token),
at a bounded rate. Against a real server process on loopback, its stderr read as a log collector would
(`--log-format json`)."""

from pathlib import Path

import httpx2
import pytest

from tests.http_server import JSON_LOGS, initialize, refusals, serving

pytestmark = pytest.mark.subprocess

TOKEN = "test-http-token-0123456789abcdef"


def _post(url: str, token: str | None = None, **headers: str) -> httpx2.Response:
    return initialize(url, **headers, **({"authorization": f"Bearer {token}"} if token is not None else {}))


def test_each_refused_request_leaves_a_line_saying_why_and_from_where_and_never_the_token(ledger_path: Path) -> None:
    wrong = "not-the-token-but-just-as-long-0123"
    with serving(ledger_path, env={"PLANNER_MCP_HTTP_TOKEN": TOKEN}, options=JSON_LOGS) as served:
        url = served.url
        first = [
            _post(url, **{"x-forwarded-for": "203.0.113.7"}),  # not where it comes from
            _post(url, wrong),
            _post(url, TOKEN, origin=f"http://localhost:{served.port + 1}"),
            _post(url, TOKEN, host="rebound.example:80"),
            _post(url + "%0A%7B%22forged%22%3A1%7D"),  # a path that decodes to a newline and a JSON object
        ]
        flood = [_post(url) for _ in range(20)]
    assert [r.status_code for r in first] == [401, 401, 403, 421, 401]
    assert {r.status_code for r in flood} == {401}
    lines, unlogged = refusals(served.stderr)
    said = [(line["status"], line["reason"], line["detail"], line["method"], line["path"]) for line in lines[:5]]
    assert said == [
        (401, "no_token", "", "POST", "/mcp"),
        (401, "invalid_token", "", "POST", "/mcp"),
        (403, "origin_refused", f"Origin http://localhost:{served.port + 1}", "POST", "/mcp"),
        (421, "host_refused", "Host rebound.example:80", "POST", "/mcp"),
        (401, "no_token", "", "POST", '/mcp\\n{"forged":1}'),  # escaped: it cannot start a line of its own
    ]
    assert all(line["remote"].startswith("127.0.0.1:") for line in lines)
    assert len(lines) + unlogged == 25 and unlogged > 0  # every refusal is counted, not every one has a line
    assert TOKEN not in served.stderr and wrong not in served.stderr
    assert "Invalid Origin header" not in served.stderr  # the SDK's own line per refusal, unbounded, is not kept
