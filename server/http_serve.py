"""`planner-mcp serve --transport http`: Streamable HTTP, bearer tokens required, foreign origins refused.

Binds 127.0.0.1 unless told otherwise. Host and Origin headers are checked on every request (DNS
rebinding): localhost's, the public URL's, and the origins configured are the only ones accepted.
"""

import logging
from urllib.parse import urlsplit

from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from server.app import build_server
from server.http_auth import JWTVerifier, StaticBearer
from server.settings import HTTPConfig, Settings, SettingsError
from server.urls import shown

__all__ = ["http_app", "serve_http"]

logger = logging.getLogger(__name__)

_LOCAL_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
_LOCAL_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


def http_app(settings: Settings) -> ASGIApp:
    """The ASGI app for these settings; raises `SettingsError` naming what to set when it cannot be served."""
    config = settings.http
    if (problem := config.problem()) is not None:
        raise SettingsError(f"cannot serve HTTP: {problem}.")
    auth = None
    if config.oauth:
        # Strings, not AnyHttpUrl: the SDK's settings keep a path-less issuer exact (no added slash), as
        # RFC 8414 compares issuers as strings.
        settings_for_sdk = AuthSettings.model_validate({
            "issuer_url": config.oauth_issuer,
            "resource_server_url": config.resource_url,
            "validate_token_resource": False,  # the verifier checks the audience itself
        })  # fmt: skip
        auth = (settings_for_sdk, JWTVerifier(config))
    server = build_server(settings, auth=auth)
    app: ASGIApp = server.streamable_http_app(
        stateless_http=config.stateless, transport_security=_security(config), host=config.host
    )
    if config.token is not None:
        app = StaticBearer(app, config.token.get_secret_value())
    return app


def _security(config: HTTPConfig) -> TransportSecuritySettings:
    public = urlsplit(shown(config.resource_url))  # a Host or Origin header never carries a user
    hosts = [*_LOCAL_HOSTS, f"{config.host}:*", public.netloc]
    origins = [*_LOCAL_ORIGINS, f"{public.scheme}://{public.netloc}", *config.allowed_origins]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def serve_http(settings: Settings) -> int:
    import uvicorn

    app = http_app(settings)
    config = settings.http
    mode = "OAuth access tokens from " + shown(config.oauth_issuer or "") if config.oauth else "a static bearer token"
    logger.warning(
        "Serving MCP over HTTP at http://%s:%d/mcp (%s%s)",
        config.host,
        config.port,
        mode,
        ", stateless" if config.stateless else "",
    )
    # log_config=None: uvicorn keeps its hands off logging, so its lines take our format (text or JSON).
    uvicorn.run(app, host=config.host, port=config.port, log_config=None, lifespan="on")
    return 0
