"""The Vault store: docs and inventory from a KV v2 mount, through hvac, without ever blocking the event loop.

Each request runs in a worker thread of the store's own pool (a slow Vault cannot starve the ledger's
threads), of which one caller may hold half, bounded by a deadline that starts when the thread does (time
spent waiting for one is not Vault's). Every answer is checked for shape before it is used. Transient
failures are retried a bounded number of times; repeated outages open a circuit breaker so calls fail fast
until Vault answers again. Reads are cached for a short TTL; the gate still records every call.
"""

import hashlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from contracts import ErrorKind, SourceRef
from contracts.names import is_valid_name
from server.call.callers import caller
from server.call.failures import ToolFailure, entry_not_found, entry_too_large
from server.call.intent_first import intent_recorded
from server.config.vault import VaultConfig
from server.stores.base import Entry, KeySource
from server.stores.cache import TTLCache
from server.support.backoff import backoff_s
from server.support.breaker import CircuitBreaker
from server.vault.deadline import attempt_deadline
from server.vault.errors import VaultFailure, timed_out, translate
from server.vault.paths import entry_path, llm_key_path
from server.vault.replies import kv_keys, kv_secret
from server.vault.session import VaultSession

__all__ = ["VaultStore"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_THREADS = 8
_PER_CALLER = _THREADS // 2
"""Requests to Vault one caller may have in flight: another caller always finds a thread free."""
_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 1.0
_LLM_KEY_FIELD = "api_key"
_LLM_KEY = re.compile(r"[\x21-\x7e]{1,4096}")
"""What an API key looks like on the wire: it goes into an HTTP header, where anything else is an injection."""
_FORMAT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")
"""A runbook's `format` as a client may be shown it (markdown, text, asciidoc...)."""


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
        self.session = VaultSession(config, learn_secret=learn_secret, max_entry_bytes=max_bytes)
        self.breaker = CircuitBreaker(
            threshold=config.breaker_failures, cooldown_s=config.breaker_cooldown_s, clock=clock
        )
        self.cache: TTLCache[Entry | list[str]] = TTLCache(ttl_s=config.cache_ttl_s, clock=clock)
        self._learn = learn_secret
        self._max_bytes = max_bytes
        self._slots: anyio.CapacityLimiter | None = None
        self._threads: anyio.CapacityLimiter | None = None
        self._callers: dict[str, anyio.CapacityLimiter] = {}

    async def read_doc(self, name: str) -> Entry:
        return await self._read("docs", name)

    async def list_docs(self) -> list[str]:
        return await self._list("docs")

    async def read_inventory(self, name: str) -> Entry:
        return await self._read("inventory", name)

    async def list_inventories(self) -> list[str]:
        return await self._list("inventory")

    @property
    def local_reads(self) -> None:
        """None: every read is a request to Vault, awaited under its limits, with the intent written first."""
        return None

    @property
    def llm_key(self) -> KeySource:
        return self.read_llm_key

    async def read_llm_key(self) -> str | None:
        """The LLM key at `api-keys/<name>` (field `api_key`), or None when there is none. Never cached here."""
        path = llm_key_path(self.config.llm_key_name)
        try:
            secret = await self._call(self._reader(path), path=path, capability="read")
        except VaultFailure as failure:
            if failure.kind == ErrorKind.NOT_FOUND:
                return None
            raise
        fields, _ = kv_secret(secret, self.config, f"{self.config.mount}/{path}")
        key = fields.get(_LLM_KEY_FIELD)
        if not isinstance(key, str) or not key:
            return None
        if len(key) <= 4096:
            self._learn(key)
        if not _LLM_KEY.fullmatch(key):
            raise VaultFailure(
                ErrorKind.VAULT_ERROR,
                f"The field `{_LLM_KEY_FIELD}` of {self.config.mount}/{path} is not an API key (one line of visible "
                "ASCII characters, at most 4096).",
                recommended_action="Ask an operator to store the key exactly as it was issued, or set OPENAI_API_KEY.",
            )
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
            if failure.kind == ErrorKind.NOT_FOUND:
                where = f" in Vault ({self.config.mount}/{folder}/)"
                raise entry_not_found(folder, name, where) from failure
            # Vault's answer passed the cap: the entry cannot be within the limit.
            if failure.kind == ErrorKind.TOO_LARGE:
                raise ToolFailure(
                    ErrorKind.TOO_LARGE,
                    f"The {folder} entry {name!r} is larger than the limit of {self._max_bytes} bytes.",
                    recommended_action=failure.recommended_action,
                ) from failure
            raise
        entry = self._entry(folder, name, *kv_secret(secret, self.config, f"{self.config.mount}/{path}"))
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
            if failure.kind != ErrorKind.NOT_FOUND:
                raise
            names: list[str] = []  # Vault answers 404 for an empty folder
        else:
            # Sub-folders end in '/' and are not entries; a name no tool could ask for is not listed.
            keys = kv_keys(reply, self.config, f"{self.config.mount}/{folder}/")
            names = sorted(k for k in keys if is_valid_name(k))
        self.cache.put(("list", folder), names)
        return names

    def _entry(self, folder: str, name: str, data: dict[str, Any], version: int) -> Entry:
        raw = json.dumps(data, ensure_ascii=False).encode()
        size = len(raw)
        if size > self._max_bytes:
            raise entry_too_large(folder, name, size, self._max_bytes)
        # A runbook is usually stored as {"content": "<markdown>"}; anything else is returned as the JSON it is.
        content: Any = data
        fmt = "json"
        declared = data.get("format") or "markdown"
        if (
            folder == "docs"
            and isinstance(data.get("content"), str)
            and set(data) <= {"content", "format"}
            and isinstance(declared, str)
            and _FORMAT.fullmatch(declared)
        ):
            content = data["content"]
            fmt = declared
        source = SourceRef(kind=folder, name=name, store=self.kind, version=str(version))
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        return Entry(name=name, format=fmt, content=content, source=source, digest=digest)

    # -- one request, bounded --------------------------------------------------------------------

    async def _call(self, operation: Callable[[Any], _T], *, path: str, capability: str) -> _T:
        await intent_recorded()  # nothing is asked of Vault for a call the ledger has not recorded
        if not self.breaker.admit():
            raise self._breaker_open()
        try:
            async with self._turn():
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

    @asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """A thread for this call, when one of the caller's share and one of the store's are free.

        The wait is bounded, and running out of it is not Vault's failure (nothing was sent): it is VAULT_BUSY,
        which the breaker does not count, so a caller flooding the store fills its own share and no more.
        """
        if self._slots is None:
            self._slots, self._threads = anyio.CapacityLimiter(_THREADS), anyio.CapacityLimiter(_THREADS)
        who = caller() or ""
        mine = self._callers.get(who) or self._callers.setdefault(who, anyio.CapacityLimiter(_PER_CALLER))
        try:
            async with AsyncExitStack() as held:
                with anyio.move_on_after(self.config.attempt_s) as waiting:
                    await held.enter_async_context(mine)
                    await held.enter_async_context(self._slots)
                if waiting.cancelled_caught:
                    raise self._busy()
                yield
        finally:
            if not mine.borrowed_tokens and not mine.statistics().tasks_waiting:
                self._callers.pop(who, None)

    async def _in_thread(self, operation: Callable[[Any], _T]) -> _T:
        # The attempt's deadline starts in the thread, when the first request is sent, and the thread keeps it
        # itself (no body is read past it); this bound only catches what no read checks, such as a slow connect.
        bound_s = self.config.attempt_s + self.config.timeout_s
        try:
            with anyio.fail_after(bound_s):
                return await anyio.to_thread.run_sync(
                    self._attempt, operation, limiter=self._threads, abandon_on_cancel=True
                )
        except TimeoutError:
            raise timed_out(self.config, bound_s) from None

    def _attempt(self, operation: Callable[[Any], _T]) -> _T:
        with attempt_deadline(self.config.attempt_s):
            return self.session.run(operation)

    def _busy(self) -> VaultFailure:
        return VaultFailure(
            ErrorKind.VAULT_BUSY,
            f"No thread for a request to Vault at {self.config.host} came free within {self.config.attempt_s:g} s "
            f"(one caller may hold {_PER_CALLER} of the server's {_THREADS}); this call sent nothing.",
            recommended_action="Retry once your earlier calls have finished; make fewer calls at once.",
        )

    def _breaker_open(self) -> VaultFailure:
        return VaultFailure(
            ErrorKind.VAULT_UNAVAILABLE,
            f"Vault at {self.config.host} failed {self.breaker.failures} times in a row (last: "
            f"{self.breaker.last_failure}); calls fail fast for {self.breaker.retry_in_s():.0f} s more, then one "
            "is tried again.",
            recommended_action="Wait and retry; `planner-mcp doctor` shows what is wrong with Vault. Calls succeed "
            "again by themselves once it answers.",
        )
