"""An OAuth issuer's public side on loopback: a JWKS endpoint, and tokens signed with its key (or another)."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm

__all__ = ["Issuer"]


class Issuer:
    """Publishes one RSA key (and any `more_keys`) at `jwks_url` and mints tokens: `token()` is valid, keyword
    changes break it. While `down`, the JWKS endpoint answers 503."""

    def __init__(self, audience: str, more_keys: list[dict[str, Any]] | None = None) -> None:
        self.audience = audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        keys = [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}, *(more_keys or [])]
        self._jwks = json.dumps({"keys": keys}).encode()
        self.jwks_requests = 0
        self.down = False
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.jwks_requests += 1
                if issuer.down:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(issuer._jwks)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.jwks_url = f"{self.url}/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def token(self, *, key: Any = None, algorithm: str = "RS256", kid: str | None = "test-key", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "aud": self.audience, "sub": "alice", "client_id": "test-client",
                "iat": now, "exp": now + 300, **claims}  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(body, key or self._key, algorithm=algorithm, headers=headers)

    def public_pem(self) -> bytes:
        """The published key as PEM: what an algorithm-confusion attack keys an HMAC with."""
        return self._key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)

    def __enter__(self) -> "Issuer":
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
