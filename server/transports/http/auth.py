"""Who may call over HTTP: a static bearer token, or OAuth access tokens (JWT) checked against the issuer's keys.

The caller's token authenticates the caller to this server and goes no further: Vault and the LLM endpoint
are reached with the server's own credentials, never with the token a client sent.
"""

import hmac
import json
from typing import Any

import anyio.to_thread
from mcp.server.auth.provider import AccessToken
from starlette.types import ASGIApp, Receive, Scope, Send

from server.config.settings import HTTPConfig
from server.transports.http.refusals import note_refusal

__all__ = ["JWTVerifier", "StaticBearer"]

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
"""Asymmetric only: a key published in a JWKS must not be usable to mint tokens (no HS*, no `none`). Each key
verifies only its own algorithm among these."""


class StaticBearer:
    """ASGI middleware: every request must carry `Authorization: Bearer <the configured token>`."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(sent, self._expected):
            await self._app(scope, receive, send)
            return
        reason = "invalid_token" if sent else "invalid_request"
        body = json.dumps({"error": reason, "error_description": "a valid bearer token is required"}).encode()
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", f'Bearer error="{reason}"'.encode()),
            ],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})


class JWTVerifier:
    """The SDK's TokenVerifier for OAuth access tokens: signature by a key from the issuer's JWKS, then issuer,
    audience and expiry. Any failure is a refusal (the SDK answers 401); the reason goes to the refusal log."""

    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        import jwt  # only HTTP with OAuth pays for it

        self._jwt = jwt
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=10)
        self._issuer = issuer
        self._audience = audience

    @classmethod
    def configured(cls, config: HTTPConfig) -> "JWTVerifier":
        """The verifier of PLANNER_MCP_OAUTH_ISSUER's tokens."""
        assert config.oauth_jwks_url and config.oauth_issuer and config.oauth_audience
        return cls(config.oauth_issuer, config.oauth_audience, config.oauth_jwks_url)

    @property
    def audience(self) -> str:
        return self._audience

    async def verify_token(self, token: str) -> AccessToken | None:
        """Never raises: whatever a token makes PyJWT, the JWKS fetch or a key's library raise (a malformed token,
        a key of another type than its `alg`, an issuer that cannot be reached) is a refusal like a bad signature,
        not an error of the server's (a 500)."""
        claims = await self.checked_claims(token)
        return None if claims is None else self._access(token, claims)

    async def checked_claims(self, token: str) -> dict[str, Any] | None:
        """The token's claims once its signature, issuer, audience and expiry check out; None (the reason noted
        for the refusal log) otherwise. Never raises."""
        try:
            return await anyio.to_thread.run_sync(self._decode, token)
        except Exception as exc:
            note_refusal("invalid_token", f"{type(exc).__name__}: {exc}".replace(token, "[the token]"))
            return None

    def _decode(self, token: str) -> dict[str, Any]:
        # The key itself (a PyJWK), not its bare public key: PyJWT then verifies with the key's own algorithm
        # (its JWK's `alg`, or its type's), so a token cannot pick another one for it (ES256 for an RSA key).
        key = self._keys.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = self._jwt.decode(
            token,
            key,
            algorithms=_ALGORITHMS,
            audience=self._audience,
            issuer=self._issuer,
            options={"require": ["exp", "iss", "aud"]},
        )
        return claims

    def _access(self, token: str, claims: dict[str, Any]) -> AccessToken:
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "unknown"),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self._audience,
            subject=claims.get("sub"),
            claims={"iss": claims.get("iss")},
        )
