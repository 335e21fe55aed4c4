"""An OAuth issuer's public side on loopback: a JWKS endpoint, and tokens signed with its key (or another)."""

import json
import time
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm

from tests.peers.loopback import LoopbackHandler, LoopbackPeer

__all__ = ["Issuer"]


class Issuer(LoopbackPeer[str]):
    """Publishes one RSA key (and any `more_keys`) at `jwks_url` and mints tokens: `token()` is valid, keyword
    changes break it. While `down`, the JWKS endpoint answers 503. It listens from the constructor; the requests
    it records are their paths."""

    def __init__(self, audience: str, more_keys: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.audience = audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        keys = [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}, *(more_keys or [])]
        self._jwks = json.dumps({"keys": keys}).encode()
        self.down = False
        self.start()
        self.url = self.addr
        self.jwks_url = f"{self.url}/jwks.json"

    @property
    def jwks_requests(self) -> int:
        """How many requests reached the JWKS endpoint."""
        return len(self.requests)

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


class _Handler(LoopbackHandler):
    def do_GET(self) -> None:
        issuer = cast(Issuer, self.peer)
        issuer._record(self.path)
        if issuer.down:
            self.send_error(503)
            return
        self.respond(200, [("content-type", "application/json")], issuer._jwks)


Issuer.handler = _Handler
