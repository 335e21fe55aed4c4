"""One authenticated hvac client: credentials in Vault's order, renewal before expiry, re-login after it.

hvac is synchronous, so everything here blocks and runs in worker threads. The order of credentials is
Vault's own: VAULT_TOKEN, else the CLI's `~/.vault-token`, else AppRole. A token that Vault stops
accepting is replaced (the token file re-read, AppRole logged in again) instead of failing forever.
A root token read from a file is refused: this server never holds more than read and list.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from contracts import ErrorKind
from server.config.file_trust import untrusted
from server.config.urls import split
from server.config.vault import AuthMethod, VaultConfig
from server.vault.errors import VaultFailure
from server.vault.replies import TokenInfo, login_auth, renewed_lease, token_info

__all__ = ["VaultSession"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_RENEW_FRACTION = 1 / 3
"""Renew (or log in again) once less than this part of the token's lifetime is left, as Vault Agent does."""

_NO_CREDENTIALS = (
    "Set VAULT_TOKEN, run `vault login` (it writes ~/.vault-token), or set VAULT_ROLE_ID and VAULT_SECRET_ID "
    "for AppRole, then restart the server."
)


class VaultSession:
    def __init__(
        self, config: VaultConfig, *, learn_secret: Callable[..., None], max_entry_bytes: int = 4 * 1024 * 1024
    ) -> None:
        """`learn_secret` is told every credential the session holds, so none can reach an output."""
        self.config = config
        self._max_entry_bytes = max_entry_bytes
        self._learn = learn_secret
        self._learn(*config.secrets())
        self._lock = threading.Lock()
        self._client: Any = None
        self.method: AuthMethod | None = None
        self.policies: list[str] = []
        self._expires_at: float | None = None
        self._lifetime_s = 0.0
        self._renewable = False
        self._warned_root = False

    def client(self) -> Any:
        """The hvac client, unauthenticated until `run` or `authenticate` has been called."""
        with self._lock:
            return self._hvac()

    def _hvac(self) -> Any:
        if self._client is None:
            import hvac

            from server.vault.transport import VaultHTTP  # imports requests: only once Vault is used

            url, credentials = split(self.config.addr)
            if self.config.skip_verify:
                import urllib3

                # Said once, loudly, at start-up and in every ledger row; not once per request.
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

            # Every value passed explicitly: hvac otherwise reads VAULT_TOKEN, ~/.vault-token and VAULT_CACERT
            # itself, some of them at import time, around our settings.
            self._client = hvac.Client(
                url=url,
                token="",
                verify=self.config.verify,
                timeout=self.config.timeout_s,
                namespace=self.config.namespace,
                session=VaultHTTP(self.config, max_entry_bytes=self._max_entry_bytes, credentials=credentials),
                allow_redirects=False,
            )
        return self._client

    def run(self, operation: Callable[[Any], _T]) -> _T:
        """Run one operation authenticated; if Vault no longer accepts the token, get a new one and retry once."""
        import hvac.exceptions

        client = self.authenticate()
        try:
            return operation(client)
        except hvac.exceptions.Forbidden:
            if not self._token_rejected(client):
                raise  # the token is fine: its policy denies this path
            logger.info("Vault no longer accepts the token (%s); authenticating again", self.method)
            return operation(self.authenticate(force=True))

    def authenticate(self, *, force: bool = False) -> Any:
        with self._lock:
            client = self._hvac()
            if force or self.method is None:
                self._login(client)
            # Also straight after a login: a token handed over with little life left is renewed at once.
            if self._expiring():
                self._refresh(client)
            return client

    def remaining_ttl_s(self) -> float | None:
        """Seconds until the token expires; None when it does not."""
        if self._expires_at is None:
            return None
        return max(0.0, self._expires_at - time.monotonic())

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.adapter.close()
                self._client = None
            self.method = None

    # -- credentials -------------------------------------------------------------------------------

    def _login(self, client: Any) -> None:
        import hvac.exceptions

        self.method = None
        refused: list[str] = []
        for method in self.config.auth_methods():
            try:
                if method == "approle":
                    self._approle(client)
                else:
                    token = self._token(method)
                    if token is None:
                        continue
                    client.token = token
                    self._adopt(method, token_info(client.auth.token.lookup_self(), self.config))
            except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest, hvac.exceptions.Unauthorized):
                refused.append(_DESCRIPTIONS[method])
                continue
            self.method = method
            return
        client.token = ""
        if not refused:
            raise VaultFailure(
                ErrorKind.VAULT_AUTH_FAILED, "No Vault credentials are configured.", recommended_action=_NO_CREDENTIALS
            )
        raise VaultFailure(
            ErrorKind.VAULT_AUTH_FAILED,
            f"Vault at {self.config.host} refused {' and '.join(refused)} (expired, revoked or wrong).",
            recommended_action="Give the server a valid token (VAULT_TOKEN or `vault login`) and restart it, or "
            "configure AppRole (VAULT_ROLE_ID, VAULT_SECRET_ID) so it can log in again by itself.",
        )

    def _token(self, method: AuthMethod) -> str | None:
        if method == "token":
            assert self.config.token is not None
            return self.config.token.get_secret_value()
        path = self.config.token_file
        # Read on every login, not once: `vault login` may have written a fresh token since the last one.
        if path is None or not path.is_file():
            return None
        if (problem := untrusted(path)) is not None:
            # Whoever can write it could hand the server their own token, and what it reads with it.
            raise VaultFailure(
                ErrorKind.VAULT_AUTH_FAILED,
                f"The token file {path} is refused: {problem}.",
                recommended_action="Fix the file as said (as `vault login` leaves it: yours, mode 0600), or pass the "
                "token as VAULT_TOKEN, then retry.",
            )
        token = path.read_text(encoding="utf-8").strip() or None
        if token:
            self._learn(token)
        return token

    def _approle(self, client: Any) -> None:
        assert self.config.role_id is not None and self.config.secret_id is not None
        reply = client.auth.approle.login(
            role_id=self.config.role_id,
            secret_id=self.config.secret_id.get_secret_value(),
            mount_point=self.config.approle_mount,
        )
        token, info = login_auth(reply, self.config)
        self._learn(token)
        self._adopt("approle", info)

    def _adopt(self, method: AuthMethod, info: TokenInfo) -> None:
        policies = info.policies
        if "root" in policies:
            if method != "token":
                raise VaultFailure(
                    ErrorKind.VAULT_AUTH_FAILED,
                    "The token in ~/.vault-token is a root token; planner-mcp never uses a root token read from "
                    "a file.",
                    recommended_action="Create a least-privilege token with the policy from `planner-mcp vault-policy` "
                    "and pass it as VAULT_TOKEN, or use AppRole.",
                )
            if not self._warned_root:
                self._warned_root = True
                logger.warning(
                    "VAULT_TOKEN is a root token: give the server a least-privilege token instead "
                    "(`planner-mcp vault-policy` prints the policy it needs)"
                )
        self.policies = policies
        self._lifetime_s = info.lifetime_s
        self._renewable = info.renewable
        self._expires_at = time.monotonic() + info.ttl_s if info.ttl_s > 0 else None

    def _expiring(self) -> bool:
        remaining = self.remaining_ttl_s()
        return remaining is not None and remaining <= self._lifetime_s * _RENEW_FRACTION

    def _refresh(self, client: Any) -> None:
        import hvac.exceptions

        if self._renewable:
            try:
                lease_s = renewed_lease(client.auth.token.renew_self(), self.config)
            except hvac.exceptions.VaultError as exc:
                logger.info("Vault did not renew the token (%s); it is used until it expires", type(exc).__name__)
            else:
                self._expires_at = time.monotonic() + lease_s if lease_s > 0 else None
                return
        if self.method == "approle":
            self._login(client)

    def _token_rejected(self, client: Any) -> bool:
        import hvac.exceptions

        try:
            client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return True
        return False


_DESCRIPTIONS: dict[AuthMethod, str] = {
    "token": "the token in VAULT_TOKEN",
    "token-file": "the token in ~/.vault-token",
    "approle": "the AppRole credentials (VAULT_ROLE_ID, VAULT_SECRET_ID)",
}
