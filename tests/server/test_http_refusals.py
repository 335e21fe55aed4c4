"""Refused HTTP requests: any bad token is a 401 (never a 500), and every refusal leaves a log line saying why,
from where and for what (never the token), at a bounded rate. Against a real server process on loopback and
the loopback OAuth issuer, its stderr read as a log collector would (`--log-format json`)."""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import DEFAULT_TOOLS
from tests.http_server import JSON_LOGS, free_port, initialize, refusals, serving, use
from tests.peers.jwks_server import Issuer

pytestmark = pytest.mark.subprocess

TOKEN = "test-http-token-0123456789abcdef"
_HMAC_SECRET = b"a-shared-secret-no-jwks-should-publish"


def _post(url: str, token: str | None = None, **headers: str) -> httpx2.Response:
    return initialize(url, **headers, **({"authorization": f"Bearer {token}"} if token is not None else {}))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _raw(header: Any, claims: dict[str, Any], signature: bytes = b"sig") -> str:
    """A token as anyone can write one: any header, any claims, any signature."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


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


def test_no_bad_access_token_is_a_server_error_each_is_a_401(ledger_path: Path) -> None:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    more_keys = [
        {"kty": "oct", "kid": "hmac", "k": _b64(_HMAC_SECRET)},  # usable by PyJWT, but only to mint tokens
        {"kty": "EC", "kid": "odd-curve", "crv": "P-999", "x": "AA", "y": "AA"},  # not usable by PyJWT
    ]
    with Issuer(audience=resource, more_keys=more_keys) as issuer:
        env = {
            "PLANNER_MCP_OAUTH_ISSUER": issuer.url,
            "PLANNER_MCP_OAUTH_AUDIENCE": resource,
            "PLANNER_MCP_OAUTH_JWKS_URL": issuer.jwks_url,
        }
        claims = {"iss": issuer.url, "aud": resource, "sub": "alice", "exp": int(time.time()) + 300}
        header = {"alg": "HS256", "kid": "test-key"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
        public_pem = issuer.public_pem()
        confused = f"{signing_input.decode()}.{_b64(hmac.new(public_pem, signing_input, hashlib.sha256).digest())}"
        with serving(ledger_path, port=port, env=env, options=JSON_LOGS) as served:
            issuer.down = True
            refused = {"the issuer's keys cannot be fetched": _post(served.url, issuer.token())}
            issuer.down = False
            refused |= {
                name: _post(served.url, token)
                for name, token in {
                    "ES256 under the RSA key's kid": issuer.token(key=ec.generate_private_key(ec.SECP256R1()),
                                                                  algorithm="ES256"),
                    "RS384 by a key published for RS256": issuer.token(algorithm="RS384"),
                    "HS256 keyed with the RSA public key": confused,
                    "HS256 by the JWKS's symmetric key": issuer.token(key=_HMAC_SECRET, algorithm="HS256", kid="hmac"),
                    "the kid of a key PyJWT cannot use": issuer.token(kid="odd-curve"),
                    "an unknown kid": issuer.token(kid="nobody"),
                    "no kid": issuer.token(kid=None),
                    "a kid that is not a string": _raw({"alg": "RS256", "kid": ["test-key"]}, claims),
                    "alg none": _raw({"alg": "none", "kid": "test-key"}, claims, b""),
                    "a header that is not an object": _raw(["RS256"], claims),
                    "not base64": "!!!.e30.c2ln",
                    "two parts": "e30.e30",
                    "a subject that is not a string": issuer.token(sub=5),
                }.items()
            }  # fmt: skip
            tools, _ = anyio.run(use, served.url, issuer.token())
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 401)
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in refused.values())
    assert tools == DEFAULT_TOOLS  # and the server kept serving
    assert "Traceback" not in served.stderr and "Exception in ASGI application" not in served.stderr
    lines, _ = refusals(served.stderr)
    details = [line["detail"] for line in lines if line["reason"] == "invalid_token"]
    assert details[0].startswith("PyJWKClientConnectionError")  # why each was refused goes to the log
    assert details[1].startswith("InvalidAlgorithmError")  # ES256 is not the RSA key's algorithm
