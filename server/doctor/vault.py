"""`planner-mcp doctor`'s Vault checks: reachable, unsealed, authenticated, and able to use each path.

Path checks ask Vault what the token *could* do (`sys/capabilities-self`) instead of reading: the doctor
never fetches a secret value, and prints no token.
"""

from collections.abc import Iterator
from typing import Any

from contracts import ErrorKind
from server.config.urls import shown
from server.config.vault import VaultConfig
from server.doctor.check import Check
from server.vault.errors import VaultFailure, translate
from server.vault.paths import entry_path, llm_key_path
from server.vault.replies import capabilities, seal_status
from server.vault.session import VaultSession

__all__ = ["vault_checks"]

_OUTSIDE_PROBE = "planner-mcp-doctor-probe"
"""A path outside docs/ and inventory/: a least-privilege token can do nothing there."""


def vault_checks(config: VaultConfig, *, default_inventory: str, llm_key_from_vault: bool) -> Iterator[Check]:
    session = VaultSession(config, learn_secret=lambda *_: None)
    try:
        yield _tls(config)
        try:
            version, sealed = seal_status(session.client().sys.read_seal_status(), config)
        except Exception as exc:
            yield _failed("vault.reachable", exc, config, "sys/seal-status")
            return
        yield Check("vault.reachable", "ok", f"Vault {version} answers at {shown(config.addr)}")
        if sealed:
            yield Check("vault.sealed", "fail", "Vault is sealed", "Ask a Vault operator to unseal it.")
            return
        yield Check("vault.sealed", "ok", "Vault is unsealed")
        try:
            client = session.authenticate()
        except Exception as exc:
            yield _failed("vault.auth", exc, config, "auth/token/lookup-self")
            return
        yield _auth(session)
        yield from _paths(session, client, config, default_inventory, llm_key_from_vault)
    finally:
        session.close()


def _tls(config: VaultConfig) -> Check:
    if config.skip_verify:
        return Check(
            "vault.tls",
            "warn",
            "VAULT_SKIP_VERIFY=true: Vault's certificate is not verified (every ledger row says so)",
            "Set VAULT_CACERT to Vault's CA and unset VAULT_SKIP_VERIFY.",
        )
    if config.addr.startswith("http://"):
        return Check(
            "vault.tls",
            "warn",
            f"{shown(config.addr)} is plain HTTP: tokens and data travel unencrypted",
            "Use https://.",
        )
    source = (
        f"VAULT_CACERT={config.cacert}"
        if config.cacert
        else (f"VAULT_CAPATH={config.capath}" if config.capath else "the system's CA store")
    )
    return Check("vault.tls", "ok", f"certificates verified against {source}")


def _auth(session: VaultSession) -> Check:
    ttl = session.remaining_ttl_s()
    lifetime = "never expires" if ttl is None else f"expires in {ttl:.0f} s, renewed before it does"
    policies = ", ".join(session.policies) or "none"
    detail = f"authenticated by {session.method}; token policies: {policies}; {lifetime}"
    if "root" in session.policies:
        return Check(
            "vault.auth", "warn", detail, "Use a least-privilege token: `planner-mcp vault-policy` prints its policy."
        )
    return Check("vault.auth", "ok", detail)


def _paths(
    session: VaultSession, client: Any, config: VaultConfig, default_inventory: str, llm_key_from_vault: bool
) -> Iterator[Check]:
    mount = config.mount
    needed = {
        f"{mount}/metadata/docs/": "list",
        f"{mount}/data/{entry_path('docs', _OUTSIDE_PROBE)}": "read",
        f"{mount}/metadata/inventory/": "list",
        f"{mount}/data/{entry_path('inventory', default_inventory)}": "read",
    }
    if llm_key_from_vault:
        needed[f"{mount}/data/{llm_key_path(config.llm_key_name)}"] = "read"
    outside = f"{mount}/data/{_OUTSIDE_PROBE}"
    try:
        reply = session.run(lambda c: c.sys.get_capabilities(paths=[*needed, outside]))
        granted_on = capabilities(reply, config, [*needed, outside])
    except Exception as exc:
        yield _failed("vault.paths", exc, config, "sys/capabilities-self")
        return
    for path, capability in needed.items():
        granted = granted_on[path]
        shown = path.replace(_OUTSIDE_PROBE, "<name>")
        if capability in granted or "root" in granted:
            yield Check(f"vault.path {shown}", "ok", f"the token may {capability} it")
        else:
            yield Check(
                f"vault.path {shown}",
                "fail",
                f"the token may not {capability} it",
                "Apply the policy from `planner-mcp vault-policy` to the token.",
            )
    extra = granted_on[outside] - {"deny"}
    if extra:
        yield Check(
            "vault.least-privilege",
            "warn",
            f"the token can also {', '.join(sorted(extra))} paths outside docs/ and inventory/",
            "Give the server a token with only the policy from `planner-mcp vault-policy`.",
        )
    else:
        yield Check("vault.least-privilege", "ok", "the token can reach nothing outside docs/ and inventory/")


def _failed(name: str, exc: Exception, config: VaultConfig, path: str) -> Check:
    try:
        failure = translate(exc, config, path=path, capability="access")
    except Exception:
        failure = VaultFailure(ErrorKind.VAULT_ERROR, f"unexpected error: {type(exc).__name__}", recommended_action="")
    return Check(name, "fail", f"{failure.kind}: {failure.message}", failure.recommended_action)
