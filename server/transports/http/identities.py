"""Who is calling, under an agents file: a static token known by its SHA-256 digest, or an OAuth access token (JWT)
from one of the issuers the file (or PLANNER_MCP_OAUTH_*) names, checked against that issuer's keys.

The verifier only says who the caller is (an `Identity` in the access token's claims); which agent it acts as is
the roster's to say, in server.transports.http.agents. As with the single token, the caller's token goes no
further than this server.
"""

import hashlib
from collections.abc import Sequence
from typing import Any

from mcp.server.auth.provider import AccessToken

from contracts.agents import IssuerConfig
from server.call.callers import IDENTITY_CLAIM, Identity
from server.governance.roster import Roster
from server.transports.http.auth import JWTVerifier
from server.transports.http.refusals import note_refusal

__all__ = ["CallerVerifier"]


class CallerVerifier:
    """The SDK's TokenVerifier for an agents file. Never raises: a token that is neither a caller's static token
    nor a valid JWT of a configured issuer is a refusal (401), its reason noted for the refusal log."""

    def __init__(self, roster: Roster, issuers: Sequence[IssuerConfig], default_audience: str) -> None:
        """`default_audience` is what a token must be for when its issuer's entry names no audience: the URL
        clients reach this server at."""
        self._roster = roster
        self._jwts = {
            issuer.issuer: (JWTVerifier(issuer.issuer, issuer.audience or default_audience, issuer.jwks_url), issuer)
            for issuer in issuers
        }

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        if self._roster.has_token(digest):
            who = Identity(token_digest=digest)
            # The client id is the SDK's principal: it binds a session to the token that opened it.
            return AccessToken(token=token, client_id=f"token:{digest[:16]}", scopes=[], claims={IDENTITY_CLAIM: who})
        issuer = _unverified_issuer(token)
        found = self._jwts.get(issuer) if issuer is not None else None
        if found is None:
            note_refusal("invalid_token", "neither a caller's static token nor a token of a configured issuer")
            return None
        verifier, config = found
        claims = await verifier.checked_claims(token)
        return None if claims is None else _access(token, claims, config, verifier.audience)


def _unverified_issuer(token: str) -> str | None:
    """The `iss` a JWT says it has, read without checking it: only to choose whose keys check it (which then
    checks `iss` too). None for anything that is not a JWT with a string `iss`."""
    import jwt  # only HTTP with OAuth pays for it

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except Exception:
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def _access(token: str, claims: dict[str, Any], issuer: IssuerConfig, audience: str) -> AccessToken:
    client_id = str(claims.get("client_id") or claims.get("azp") or claims.get("sub") or "unknown")
    subject = claims.get("sub")
    scopes = _names(claims.get("scope", claims.get("scp")), split=True)
    who = Identity(
        client_id=client_id,
        subject=str(subject) if subject is not None else None,
        issuer=issuer.issuer,
        groups=_names(claims.get(issuer.groups_claim), split=False),
        scopes=scopes,
    )
    return AccessToken(
        token=token,
        client_id=client_id,
        scopes=list(scopes),
        expires_at=int(claims["exp"]),
        resource=audience,
        subject=who.subject,
        claims={"iss": issuer.issuer, IDENTITY_CLAIM: who},
    )


def _names(value: object, *, split: bool) -> tuple[str, ...]:
    """A claim's names: a list of strings, or one string (`scope` is space-separated; a lone group is one name).
    Anything else in the claim is no name."""
    if isinstance(value, str):
        return tuple(value.split()) if split else (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()
