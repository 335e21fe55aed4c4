"""The Vault store: docs and inventory from a KV v2 mount, through hvac, without ever blocking the event loop.

Each request runs in a worker thread of the store's own pool (a slow Vault cannot starve the ledger's
threads), bounded by hvac's timeout and a deadline here. Transient failures are retried a bounded number
of times; repeated outages open a circuit breaker so calls fail fast until Vault answers again. Reads are
cached for a short TTL; the gate still records every call.
"""

import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from contracts import SourceRef
from server.backoff import backoff_s
from server.breaker import CircuitBreaker
from server.cache import TTLCache
from server.failures import entry_not_found, entry_too_large
from server.names import is_valid_name
from server.offload import intent_recorded
from server.stores.base import Entry
from server.vault.config import VaultConfig
from server.vault.errors import VaultFailure, timed_out, translate
from server.vault.paths import entry_path, llm_key_path
from server.vault.session import VaultSession

__all__ = ["VaultStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_THREADS = 8
_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 1.0
_LLM_KEY_FIELD = "api_key"


class VaultStore:
    kind = "vault"

    def __init__(
        self,
        config: VaultConfig,
        *,
        learn_secret: Callable[..., None],
        max_bytes: int = 4 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        # urllib3 logs every request line at DEBUG, and a path holds the caller's entry name, which may be a secret
        # pasted by mistake: its request lines stay out of the log whatever the server's log level.
        logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger("urllib3").getEffectiveLevel()))
        self.session = VaultSession(config, learn_secret=learn_secret)
        self.breaker = CircuitBreaker(
            threshold=config.breaker_failures, cooldown_s=config.breaker_cooldown_s, clock=clock
        )
        self.cache: TTLCache[Entry | list[str]] = TTLCache(ttl_s=config.cache_ttl_s, clock=clock)
        self._learn = learn_secret
        self._max_bytes = max_bytes
        self._limiter: anyio.CapacityLimiter | None = None
        # hvac's own timeout bounds each request; this bounds a whole attempt (a login may precede the read).
        self._deadline_s = config.timeout_s * 3 + 1

    async def read_doc(self, name: str) -> Entry:
        return await self._read("docs", name)

    async def list_docs(self) -> list[str]:
        return await self._list("docs")

    async def read_inventory(self, name: str) -> Entry:
        return await self._read("inventory", name)

    async def list_inventories(self) -> list[str]:
        return await self._list("inventory")

    async def read_llm_key(self) -> str | None:
        """The LLM key at `api-keys/<name>` (field `api_key`), or None when there is none. Never cached here."""
        path = llm_key_path(self.config.llm_key_name)
        try:
            secret = await self._call(self._reader(path), path=path, capability="read")
        except VaultFailure as failure:
            if failure.kind == "NOT_FOUND":
                return None
            raise
        key = secret["data"]["data"].get(_LLM_KEY_FIELD)
        if not isinstance(key, str) or not key:
            return None
        self._learn(key)
        return key

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.session.close)

    # -- reading ---------------------------------------------------------------------------------

    def _reader(self, path: str) -> Callable[[Any], Any]:
        mount = self.config.mount
        return lambda client: client.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, raise_on_deleted_version=True
        )

    async def _read(self, folder: str, name: str) -> Entry:
        path = entry_path(folder, name)  # INVALID_NAME here, before any request
        cached = self.cache.get(("read", path))
        if isinstance(cached, Entry):
            return cached
        try:
            secret = await self._call(self._reader(path), path=path, capability="read")
        except VaultFailure as failure:
            if failure.kind == "NOT_FOUND":
                where = f" in Vault ({self.config.mount}/{folder}/)"
                raise entry_not_found(folder, name, where) from failure
            raise
        entry = self._entry(folder, name, secret["data"])
        self.cache.put(("read", path), entry)
        return entry

    async def _list(self, folder: str) -> list[str]:
        cached = self.cache.get(("list", folder))
        if isinstance(cached, list):
            return cached
        mount = self.config.mount
        try:
            reply = await self._call(
                lambda client: client.secrets.kv.v2.list_secrets(path=f"{folder}/", mount_point=mount),
                path=f"{folder}/",
                capability="list",
            )
        except VaultFailure as failure:
            if failure.kind != "NOT_FOUND":
                raise
            names: list[str] = []  # Vault answers 404 for an empty folder
        else:
            # Sub-folders end in '/' and are not entries; a name no tool could ask for is not listed.
            names = sorted(k for k in reply["data"]["keys"] if is_valid_name(k))
        self.cache.put(("list", folder), names)
        return names

    def _entry(self, folder: str, name: str, secret: dict[str, Any]) -> Entry:
        data = secret["data"]
        version = secret["metadata"]["version"]
        size = len(json.dumps(data, ensure_ascii=False).encode())
        if size > self._max_bytes:
            raise entry_too_large(folder, name, size, self._max_bytes)
        # A runbook is usually stored as {"content": "<markdown>"}; anything else is returned as the JSON it is.
        content: Any = data
        fmt = "json"
        if folder == "docs" and isinstance(data.get("content"), str) and set(data) <= {"content", "format"}:
            content = data["content"]
            fmt = str(data.get("format") or "markdown")
        source = SourceRef(kind=folder, name=name, store=self.kind, version=str(version))
        return Entry(name=name, format=fmt, content=content, source=source)

    # -- one request, bounded --------------------------------------------------------------------

    async def _call(self, operation: Callable[[Any], _T], *, path: str, capability: str) -> _T:
        await intent_recorded()  # nothing is asked of Vault for a call the ledger has not recorded
        if not self.breaker.admit():
            raise self._breaker_open()
        try:
            for attempt in range(self.config.retries + 1):
                try:
                    result = await self._in_thread(operation)
                except Exception as exc:
                    failure = translate(exc, self.config, path=path, capability=capability)
                    if failure.transient and attempt < self.config.retries:
                        logger.info("Vault request failed (%s); retrying (attempt %d)", failure.kind, attempt + 2)
                        await anyio.sleep(backoff_s(attempt + 1, base_s=_BACKOFF_S, cap_s=_MAX_BACKOFF_S))
                        continue
                    if failure.is_outage:
                        self.breaker.failed(failure.kind)
                    else:
                        self.breaker.succeeded()  # Vault answered: a denial or a missing entry is Vault working
                    raise failure from exc
                self.breaker.succeeded()
                return result
            raise AssertionError("unreachable: the last attempt returns or raises")
        finally:
            self.breaker.released()

    async def _in_thread(self, operation: Callable[[Any], _T]) -> _T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(_THREADS)
        try:
            with anyio.fail_after(self._deadline_s):
                return await anyio.to_thread.run_sync(
                    self.session.run, operation, limiter=self._limiter, abandon_on_cancel=True
                )
        except TimeoutError:
            raise timed_out(self.config, self._deadline_s) from None

    def _breaker_open(self) -> VaultFailure:
        return VaultFailure(
            "VAULT_UNAVAILABLE",
            f"Vault at {self.config.host} failed {self.breaker.failures} times in a row (last: "
            f"{self.breaker.last_failure}); calls fail fast for {self.breaker.retry_in_s():.0f} s more, then one "
            "is tried again.",
            recommended_action="Wait and retry; `planner-mcp doctor` shows what is wrong with Vault. Calls succeed "
            "again by themselves once it answers.",
        )
