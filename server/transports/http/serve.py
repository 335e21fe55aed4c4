"""`planner-mcp serve --transport http`: Streamable HTTP, bearer tokens required, foreign origins refused.

Binds 127.0.0.1 unless told otherwise. Host and Origin headers are checked on every request (DNS rebinding):
the Host must be localhost's, the bound address's or the public URL's, and an Origin, when a browser sends one,
must be this server's own (where it is served, and its public URL) or one configured. Every refusal leaves a
rate-limited line in the log (`refusals`), no connection is held longer than a request takes to arrive
(`connections`), and no caller holds more than `SESSIONS_PER_CALLER` sessions (`sessions`).
"""

import ipaddress
import logging
from urllib.parse import urlsplit

from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.settings import AuthSettings
from mcp.server.streamable_http_manager import DEFAULT_SESSION_IDLE_TIMEOUT, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from server.app.server import GovernedServer, build_server
from server.app.telemetry import start_telemetry
from server.config.settings import HTTPConfig, Settings, SettingsError
from server.config.urls import shown
from server.governance.roster import Roster, http_issuers, http_problem, load_roster
from server.telemetry import NO_SIGNALS, Signals
from server.transports.http.agents import ActsAsAgent
from server.transports.http.auth import JWTVerifier, StaticBearer
from server.transports.http.cancels import ExactCancels
from server.transports.http.identities import CallerVerifier
from server.transports.http.refusals import LogRefusals, ThrottledRefusalLog
from server.transports.http.replay import NoReplay
from server.transports.http.sessions import SESSIONS_PER_CALLER, SessionsPerCaller

__all__ = ["http_app", "serve_http"]

logger = logging.getLogger("server.http.serve")  # its name before the regrouping: log collectors filter by it

_LOCAL_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_ANY_ADDRESS = ("0.0.0.0", "::")


def http_app(settings: Settings, refusals: ThrottledRefusalLog | None = None, signals: Signals = NO_SIGNALS) -> ASGIApp:
    """The ASGI app for these settings; raises `SettingsError` naming what to set when it cannot be served.
    `signals` is what monitoring hears of its calls."""
    roster = load_roster(settings)
    if roster.from_agents_file:
        return LogRefusals(_agents_app(settings, roster, signals), refusals or ThrottledRefusalLog())
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
        auth = (settings_for_sdk, JWTVerifier.configured(config))
    server = build_server(settings, auth=auth, roster=roster, signals=signals)
    app = _served(server, config)
    if config.token is not None:
        app = StaticBearer(app, config.token.get_secret_value())
    return LogRefusals(app, refusals or ThrottledRefusalLog())


def _agents_app(settings: Settings, roster: Roster, signals: Signals) -> ASGIApp:
    """The app for an agents file: its callers' static tokens and the JWTs of its issuers (and PLANNER_MCP_OAUTH_*'s)
    authenticate, and each request then acts as its caller's agent (see server.transports.http.agents)."""
    config = settings.http
    issuers = http_issuers(config, roster)
    if (problem := http_problem(config, roster)) is not None:
        raise SettingsError(f"cannot serve HTTP: {problem}.")
    verifier = CallerVerifier(roster, issuers, config.resource_url)
    auth = None
    if issuers:
        # The protected-resource metadata names one authorization server: the first issuer.
        sdk_settings = AuthSettings.model_validate({
            "issuer_url": issuers[0].issuer, "resource_server_url": config.resource_url,
            "validate_token_resource": False,  # each issuer's verifier checks the audience itself
        })  # fmt: skip
        auth = (sdk_settings, verifier)
    server = build_server(settings, auth=auth, roster=roster, signals=signals)
    app = _served(server, config, agents=server)
    return app if auth is not None else _authenticated(app, verifier)


def _authenticated(app: ASGIApp, verifier: CallerVerifier) -> ASGIApp:
    """Static tokens only: the SDK's own authentication pieces around the app's HTTP requests, without OAuth's
    metadata (there is no issuer to point to). The lifespan passes untouched."""
    checked = AuthenticationMiddleware(
        AuthContextMiddleware(RequireAuthMiddleware(app, required_scopes=[])), backend=BearerAuthBackend(verifier)
    )

    async def authenticated(scope: Scope, receive: Receive, send: Send) -> None:
        await (checked if scope["type"] == "http" else app)(scope, receive, send)

    return authenticated


def _served(server: GovernedServer, config: HTTPConfig, agents: GovernedServer | None = None) -> ASGIApp:
    """The server's Streamable HTTP app, its session manager guarded (and, for an agents file, each request made
    to act as its caller's agent)."""
    app: ASGIApp = server.streamable_http_app(
        stateless_http=config.stateless, transport_security=_security(config), host=config.host,
        session_idle_timeout=DEFAULT_SESSION_IDLE_TIMEOUT,
    )  # fmt: skip
    _guard_sessions(server.session_manager, stateless=config.stateless, agents=agents)
    return app


def _guard_sessions(
    manager: StreamableHTTPSessionManager, *, stateless: bool, agents: GovernedServer | None = None
) -> None:
    """Put the session manager's own app (inside authentication, where each request's caller is known) behind
    `NoReplay` and, with sessions, `ExactCancels` and `SessionsPerCaller`; for an agents file, first of all behind
    `ActsAsAgent`. The manager calls its `asgi_app` for every request: tests/server/test_http_sessions.py fails if
    an upgrade of the SDK stops doing so."""
    guarded: ASGIApp = NoReplay(manager.asgi_app)
    if not stateless:
        guarded = ExactCancels(guarded)
        guarded = SessionsPerCaller(guarded, limit=SESSIONS_PER_CALLER, idle_timeout_s=DEFAULT_SESSION_IDLE_TIMEOUT)
    if agents is not None:
        guarded = ActsAsAgent(guarded, agents.roster, agents.record_refused_caller)
    manager.asgi_app = guarded  # type: ignore[assignment]


def _security(config: HTTPConfig) -> TransportSecuritySettings:
    public = urlsplit(shown(config.resource_url))  # a Host or Origin header never carries a user
    hosts = [*_LOCAL_HOSTS, f"{config.host}:*", public.netloc]
    origins = [*_own_origins(config), f"{public.scheme}://{public.netloc}", *config.allowed_origins]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=list(dict.fromkeys(origins))
    )


def _own_origins(config: HTTPConfig) -> list[str]:
    """Where this server is served: its address, and each loopback name when it listens there, at its port only.
    A page served by another program on localhost (another port) is foreign."""
    names = [f"[{config.host}]" if ":" in config.host else config.host]
    if config.host in _ANY_ADDRESS or _is_loopback(config.host):
        names += _LOOPBACK_NAMES
    return [f"http://{name}:{config.port}" for name in names]


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mode(settings: Settings) -> str:
    """Who may call, for the start-up line."""
    config = settings.http
    if settings.agents_path is not None:
        return f"the callers of the agents file {settings.agents_path}"
    return "OAuth access tokens from " + shown(config.oauth_issuer or "") if config.oauth else "a static bearer token"


def serve_http(settings: Settings) -> int:
    refusals = ThrottledRefusalLog()
    with start_telemetry(settings) as signals:
        return _run(settings, http_app(settings, refusals, signals), refusals)


def _run(settings: Settings, app: ASGIApp, refusals: ThrottledRefusalLog) -> int:
    import uvicorn

    from server.transports.http.connections import ConnectionLimits, descriptor_share, guarded_protocol

    config = settings.http
    limits = ConnectionLimits(descriptor_share(config.max_connections), config.request_timeout_s)
    if limits.max_connections < config.max_connections:
        logger.warning(
            "At most %d HTTP connections, not %d: half of the descriptors this process may open (`ulimit -n`)",
            limits.max_connections, config.max_connections,
        )  # fmt: skip
    # The SDK logs each Host and Origin it refuses, unbounded: the refusal log says it once, at a bounded rate.
    logging.getLogger("mcp.server.transport_security").setLevel(logging.ERROR)
    mode = _mode(settings)
    logger.warning(
        "Serving MCP over HTTP at http://%s:%d/mcp (%s%s)",
        config.host,
        config.port,
        mode,
        ", stateless" if config.stateless else "",
    )
    # log_config=None: uvicorn keeps its hands off logging, so its lines take our format (text or JSON).
    # ws="none": MCP has no use for WebSockets, and an upgraded connection would leave the limits above.
    # proxy_headers=False: uvicorn would take the caller's address from X-Forwarded-For whenever the peer is on
    # loopback (as every caller is, by default), so anyone could name the address a refusal is logged under.
    uvicorn.run(app, host=config.host, port=config.port, log_config=None, lifespan="on",
                http=guarded_protocol(limits, refusals), backlog=limits.backlog, ws="none",
                proxy_headers=False)  # fmt: skip
    return 0
