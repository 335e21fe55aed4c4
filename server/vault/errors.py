"""Vault's failures, translated once, here, into failures named for what the caller can do about them.

hvac raises one exception class per HTTP status and `requests` one per transport failure. Nothing of
either reaches a caller: their messages carry URLs and response bodies, and a caller needs a kind and
an action, not a traceback. Every message names the Vault host and, where it helps, the path; never a
token or a value.
"""

from contracts import ErrorKind
from server.call.failures import ToolFailure
from server.config.vault import VaultConfig

__all__ = ["OUTAGE_KINDS", "VaultFailure", "timed_out", "translate"]

OUTAGE_KINDS = frozenset(
    {
        ErrorKind.VAULT_UNREACHABLE,
        ErrorKind.VAULT_TIMEOUT,
        ErrorKind.VAULT_SEALED,
        ErrorKind.VAULT_TLS_FAILURE,
        ErrorKind.VAULT_UNAVAILABLE,
        ErrorKind.VAULT_ERROR,
    }
)
"""Failures of Vault itself, which the circuit breaker counts; a denied or missing entry is Vault working."""

_TRANSIENT_STATUS = {429, 500, 502, 504}


class VaultFailure(ToolFailure):
    def __init__(self, kind: ErrorKind, message: str, *, recommended_action: str, transient: bool = False) -> None:
        super().__init__(kind, message, recommended_action=recommended_action)
        self.transient = transient
        """Worth another attempt soon: a dropped connection or a 5xx, not a denial or a sealed Vault."""

    @property
    def is_outage(self) -> bool:
        return self.kind in OUTAGE_KINDS


def timed_out(config: VaultConfig, seconds: float) -> VaultFailure:
    return VaultFailure(
        ErrorKind.VAULT_TIMEOUT,
        f"Vault at {config.host} did not answer within {seconds:g} s.",
        recommended_action="Retry later; if Vault is slow under load, raise PLANNER_MCP_VAULT_TIMEOUT.",
    )


def translate(exc: Exception, config: VaultConfig, *, path: str, capability: str) -> VaultFailure:
    """The failure a caller sees for `exc`, raised while asking for `capability` on `path` (mount-relative).

    Anything that is neither a transport failure nor a Vault answer is re-raised: it is a bug, not Vault.
    """
    if isinstance(exc, VaultFailure):
        return exc
    failure = _transport_failure(exc, config)
    if failure is None:
        failure = _answer_failure(exc, config, path=path, capability=capability)
    if failure is None:
        raise exc
    return failure


def _transport_failure(exc: Exception, config: VaultConfig) -> VaultFailure | None:
    import requests.exceptions as rq

    host = config.host
    if isinstance(exc, rq.SSLError):
        return VaultFailure(
            ErrorKind.VAULT_TLS_FAILURE,
            f"The TLS certificate of Vault at {host} could not be verified (untrusted CA or wrong host name).",
            recommended_action="Set VAULT_CACERT (or VAULT_CAPATH) to the CA certificate that signed Vault's "
            "certificate. Do not turn verification off.",
        )
    if isinstance(exc, rq.Timeout):
        return timed_out(config, config.timeout_s)
    if isinstance(exc, rq.ConnectionError):
        return VaultFailure(
            ErrorKind.VAULT_UNREACHABLE,
            f"Vault at {host} could not be reached.",
            recommended_action="Check VAULT_ADDR and that Vault is running and reachable from this machine; "
            "`planner-mcp doctor` shows what answers.",
            transient=True,
        )
    if isinstance(exc, rq.RequestException):
        return VaultFailure(
            ErrorKind.VAULT_ERROR,
            f"Vault at {host} broke off its answer or sent one that could not be read.",
            recommended_action="Retry later; if it persists, check Vault's server log and what sits between it and "
            "this server.",
            transient=True,
        )
    return None


def _answer_failure(exc: Exception, config: VaultConfig, *, path: str, capability: str) -> VaultFailure | None:
    import hvac.exceptions as hv

    host = config.host
    if isinstance(exc, hv.InvalidPath):
        return VaultFailure(
            ErrorKind.NOT_FOUND,
            f"Vault has no entry at {config.mount}/{path}.",
            recommended_action="Check the name; list_docs shows the runbooks there are.",
        )
    if isinstance(exc, hv.Forbidden):
        return VaultFailure(
            ErrorKind.VAULT_PERMISSION_DENIED,
            f"Vault denied this server's token {capability} on {config.mount}/{path}.",
            recommended_action="Give the token the policy printed by `planner-mcp vault-policy` (read and list on "
            "docs/ and inventory/ only), or ask an operator which entries you may use.",
        )
    if isinstance(exc, hv.VaultDown) and "sealed" in str(exc.errors or "").lower():
        return VaultFailure(
            ErrorKind.VAULT_SEALED,
            f"Vault at {host} is sealed.",
            recommended_action="Ask a Vault operator to unseal it; calls succeed again as soon as it is.",
        )
    if isinstance(exc, hv.VaultDown | hv.VaultNotInitialized):
        return VaultFailure(
            ErrorKind.VAULT_UNAVAILABLE,
            f"Vault at {host} is not serving (HTTP {503 if isinstance(exc, hv.VaultDown) else 501}: standby, "
            "maintenance or not initialised).",
            recommended_action="Retry later, or point VAULT_ADDR at the active node.",
        )
    if isinstance(exc, hv.Unauthorized):
        return VaultFailure(
            ErrorKind.VAULT_AUTH_FAILED,
            f"Vault at {host} refused this server's credentials.",
            recommended_action="Check VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID.",
        )
    if isinstance(exc, hv.VaultError):
        status = _STATUS.get(type(exc).__name__, "other than 2xx")
        return VaultFailure(
            ErrorKind.VAULT_ERROR,
            f"Vault at {host} answered HTTP {status} for {config.mount}/{path}.",
            recommended_action="Retry later; if it persists, check Vault's server log.",
            transient=status in _TRANSIENT_STATUS,
        )
    return None


_STATUS: dict[str, int] = {
    "InvalidRequest": 400,
    "PreconditionFailed": 412,
    "RateLimitExceeded": 429,
    "InternalServerError": 500,
    "BadGateway": 502,
}
