"""A bounded async client for any OpenAI-compatible endpoint: one time limit per call, retries inside it.

`openai` is imported on first use, so a server that never plans never pays for the import. The SDK's own
retries are off: ours honour `Retry-After` within the call's time limit, say what they wait for in progress
notifications, and give up early when the endpoint asks for a wait the call cannot afford.
"""

import base64
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import anyio
from pydantic import BaseModel

from contracts import ErrorKind, TokenUsage
from server.call.failures import ToolFailure
from server.call.intent_first import intent_recorded, run_blocking
from server.call.progress import Progress
from server.config.settings import LLMConfig
from server.config.urls import shown, split
from server.llm.errors import (
    ReplyTooLarge,
    auth_or_request_failure,
    breaker_open,
    gave_up,
    invalid_reply,
    redirected,
    timed_out,
    unreachable,
)
from server.llm.retries import RETRYABLE_STATUS, retry_after_s
from server.llm.schemas import response_format
from server.llm.upstream import bounded_text, token_usage
from server.support.backoff import backoff_s
from server.support.breaker import CircuitBreaker
from server.support.encoding import encodable
from server.telemetry import NO_SIGNALS, LLMRequest, Signals

if TYPE_CHECKING:
    import openai
    from openai import AsyncOpenAI

__all__ = ["LLMClient", "LLMReply", "endpoint", "endpoint_host"]

logger = logging.getLogger(__name__)

_DEFAULT_HOST = "api.openai.com"
_NO_KEY = "no-key-needed"  # Local endpoints (Ollama, vLLM) take any key; the SDK insists on one.
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 8.0
_SCHEMA_REFUSED = frozenset({400, 422})
_OUTAGES = frozenset({ErrorKind.LLM_UNREACHABLE, ErrorKind.LLM_TIMEOUT, ErrorKind.LLM_UNAVAILABLE})
"""What the breaker counts: the endpoint could not be reached, did not answer in time, or failed (5xx) past the
retries. A refusal (401, 404, 429) or a reply that is no chat completion is the endpoint answering."""
_ANSWERS = frozenset({ErrorKind.LLM_RATE_LIMITED, ErrorKind.LLM_HTTP_ERROR, ErrorKind.LLM_INVALID_REPLY})


@dataclass(frozen=True)
class LLMReply:
    content: str
    model: str
    usage: TokenUsage | None
    finish_reason: str | None = None
    attempts: int = 1
    structured: bool = False
    """The endpoint was asked for the reply's JSON schema (`response_format`)."""
    usage_problem: str | None = None
    """Why the usage the endpoint reported was not believed (then `usage` is None): the call costs its worst case."""


def endpoint_host(config: LLMConfig) -> str:
    """The host the LLM requests go to: what provenance and messages name (never the full URL's userinfo)."""
    base_url = config.effective_base_url
    if base_url is None:
        return _DEFAULT_HOST
    return urlparse(shown(base_url)).hostname or _DEFAULT_HOST


def endpoint(config: LLMConfig) -> dict[str, Any]:
    """How an openai client reaches the endpoint: the base URL without a user and password (the SDK and httpx
    log the URLs they request), and those sent as HTTP Basic credentials, as httpx sends a URL's own."""
    if config.effective_base_url is None:
        return {"base_url": None}
    base_url, credentials = split(config.effective_base_url)
    if credentials is None:
        return {"base_url": base_url}
    basic = base64.b64encode(":".join(credentials).encode()).decode()
    return {"base_url": base_url, "default_headers": {"Authorization": f"Basic {basic}"}}


KeySource = Callable[[], Awaitable[str | None]]


class LLMClient:
    def __init__(
        self,
        config: LLMConfig,
        *,
        vault_key: KeySource | None = None,
        signals: Signals = NO_SIGNALS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`vault_key` reads the key from Vault, used when the config says the key is there (no OPENAI_API_KEY)."""
        self.config = config
        self.breaker = CircuitBreaker(
            threshold=config.breaker_failures, cooldown_s=config.breaker_cooldown_s, clock=clock
        )
        """Open after repeated outages of the endpoint: calls then fail fast, and ask nothing of it, until it
        has had `breaker_cooldown_s` to recover."""
        self._vault_key = vault_key if config.key_from_vault else None
        self._client: AsyncOpenAI | None = None
        self._client_key: str | None = None
        self._key_rejected = False
        self._retired: list[AsyncOpenAI] = []
        self._opening = anyio.Lock()
        self._schema_refused = config.structured_output == "off"
        self._signals = signals

    @property
    def endpoint_host(self) -> str:
        return endpoint_host(self.config)

    def check_configured(self) -> None:
        """Raise the failure that tells the caller exactly what to set, before any other work is done."""
        if missing := self.config.missing():
            raise ToolFailure(
                ErrorKind.LLM_NOT_CONFIGURED,
                "No LLM endpoint is configured for this server.",
                recommended_action="Set " + " and ".join(missing) + " in the server's environment "
                "(for example in the host's mcp.json `env`), then restart the server.",
            )

    def check_breaker(self) -> None:
        """Raise the breaker's refusal when it is open now: before a call reserves its prompt's tokens for a
        request that would not be sent."""
        if self.breaker.state == "open":
            raise self._breaker_open()

    def _breaker_open(self) -> ToolFailure:
        return breaker_open(
            self.endpoint_host, self.breaker.failures, self.breaker.last_failure, self.breaker.retry_in_s()
        )

    # -- the client and its key ------------------------------------------------------------------

    async def _ensure_client(self) -> "AsyncOpenAI":
        self.check_configured()
        if "openai" not in sys.modules:
            # Its first import is slow (a large SDK): in a worker thread, so the other calls are served meanwhile.
            await run_blocking(_import_openai)
        async with self._opening:
            if self._client is None or self._key_rejected:
                key = await self._key()
                # A rejected key read from Vault may have been rotated since: a new key gets a new client. The old
                # one may still carry another call's request, so it is closed at shutdown, not now.
                if self._client is None or key != self._client_key:
                    if self._client is not None:
                        self._retired.append(self._client)
                    self._client, self._client_key = self._new_client(key), key
                self._key_rejected = False
            return self._client

    def _new_client(self, key: str) -> "AsyncOpenAI":
        from openai import AsyncOpenAI

        from server.llm.http import http_client

        # The call's own deadline (anyio) bounds every request; the SDK's is a backstop, and its retries are ours.
        timeout = self.config.timeout_s + 5
        return AsyncOpenAI(
            api_key=key, **endpoint(self.config), timeout=timeout, max_retries=0, http_client=http_client(timeout)
        )

    @property
    def _key_setting(self) -> str:
        """Where the key comes from, named for the operator who has to fix it."""
        if self.config.api_key is None and self._vault_key is not None:
            return "Vault api-keys/openrouter, field api_key"
        return "OPENAI_API_KEY"

    async def _key(self) -> str:
        if self.config.api_key is not None:
            return self.config.api_key.get_secret_value()
        if self._vault_key is not None and (key := await self._vault_key()) is not None:
            return key
        if self.config.base_url is None:
            raise ToolFailure(
                ErrorKind.LLM_NOT_CONFIGURED,
                "No LLM key: OPENAI_API_KEY is not set and Vault has no api-keys/openrouter entry with an api_key.",
                recommended_action="Set OPENAI_API_KEY in the server's environment, or store the key in Vault at "
                "api-keys/openrouter (field api_key), or set OPENAI_BASE_URL to a local endpoint that needs no key.",
            )
        return _NO_KEY

    # -- one call ----------------------------------------------------------------------------------

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float,
        schema: type[BaseModel] | None = None,
        progress: Progress | None = None,
    ) -> LLMReply:
        """One chat completion with no tools offered, within the call's time limit (retries included).

        With `schema`, the endpoint is asked for JSON matching it; an endpoint that refuses `response_format`
        is asked again without it, and not asked with it again by this process.
        """
        progress = progress or Progress()
        await intent_recorded()  # no request leaves for a call the ledger has not recorded
        if not self.breaker.admit():
            raise self._breaker_open()
        try:
            reply = await self._bounded(messages, temperature, schema, progress)
        except ToolFailure as failure:
            if failure.kind in _OUTAGES:
                self.breaker.failed(failure.kind)
            elif failure.kind in _ANSWERS:
                self.breaker.succeeded()
            raise
        finally:
            self.breaker.released()  # a call that ended without a word on the endpoint (cancelled, not configured)
        self.breaker.succeeded()
        return reply

    async def _bounded(
        self, messages: list[dict[str, str]], temperature: float, schema: type[BaseModel] | None, progress: Progress
    ) -> LLMReply:
        limit = self.config.timeout_s
        request = LLMRequest(model=self.config.model or "", host=self.endpoint_host, structured=schema is not None)
        with self._signals.llm_request(request) as exchange:
            try:
                with anyio.fail_after(limit):
                    async with progress.heartbeat(self.config.progress_interval_s):
                        reply = await self._complete(messages, temperature, schema, progress)
            except TimeoutError as exc:
                exchange.failed(ErrorKind.LLM_TIMEOUT.value)
                raise timed_out(self.endpoint_host, limit) from exc
            except ToolFailure as exc:
                exchange.failed(exc.kind.value)
                raise
            usage = reply.usage
            exchange.replied(
                model=reply.model,
                input_tokens=usage.prompt_tokens if usage else None,
                output_tokens=usage.completion_tokens if usage else None,
                finish=reply.finish_reason,
            )
        return reply

    async def _complete(
        self,
        messages: list[dict[str, str]],
        temperature: float,
        schema: type[BaseModel] | None,
        progress: Progress,
    ) -> LLMReply:
        client = await self._ensure_client()
        import openai

        model = self.config.model
        assert model is not None  # checked by _ensure_client
        attempts = self.config.max_retries + 1
        attempt, fell_back = 0, False
        while True:
            attempt += 1
            structured = schema is not None and not self._schema_refused
            await progress.say(
                f"Waiting for {model} at {self.endpoint_host} (attempt {attempt} of {attempts})",
                total=self.config.timeout_s,
            )
            request: dict[str, Any] = {
                "model": model,
                "messages": messages,
                "max_tokens": self.config.max_tokens,
                "temperature": temperature,
            }
            if structured and schema is not None:
                request["response_format"] = response_format(schema)
            try:
                response = await self._create(client, request)
            except openai.APIStatusError as exc:
                if structured and exc.status_code in _SCHEMA_REFUSED:
                    self._refuse_schema(exc.status_code)
                    fell_back, attempt = True, attempt - 1  # not a retry: a different request
                    continue
                self._check_retryable(exc, fell_back)
                if attempt == attempts:
                    raise gave_up(self.endpoint_host, exc.status_code, attempts) from exc
                what = f"HTTP {exc.status_code}"
                await self._pause(what, exc.status_code, attempt, attempts, progress, exc.response.headers)
            except openai.APITimeoutError as exc:
                raise timed_out(self.endpoint_host, self.config.timeout_s) from exc
            except openai.APIConnectionError as exc:
                if attempt == attempts:
                    raise unreachable(self.endpoint_host, attempts) from exc
                await self._pause("Could not connect", None, attempt, attempts, progress, {})
            else:
                return _reply(response, model, attempt, structured, self.endpoint_host)

    async def _create(self, client: "AsyncOpenAI", request: dict[str, Any]) -> Any:
        try:
            return await client.chat.completions.create(**request)
        except json.JSONDecodeError as exc:  # a 200 whose body is cut off or not JSON: the SDK lets this through
            raise invalid_reply(self.endpoint_host, "a body that is not valid JSON") from exc
        except RecursionError as exc:  # so does the JSON reader on arrays nested thousands deep
            raise invalid_reply(self.endpoint_host, "JSON nested too deeply to read") from exc
        except ReplyTooLarge as exc:
            raise invalid_reply(self.endpoint_host, f"a body larger than {exc.cap} bytes (decoded), not read") from exc

    def _refuse_schema(self, status: int) -> None:
        logger.warning(
            "The LLM endpoint %s refused a request with response_format (HTTP %d); asking without it.",
            self.endpoint_host,
            status,
        )
        self._schema_refused = True

    def _check_retryable(self, exc: "openai.APIStatusError", fell_back: bool) -> None:
        """Raise the failure for a status that retrying cannot fix; note what the next request must do."""
        status = exc.status_code
        if fell_back and status in _SCHEMA_REFUSED:
            # Refused without response_format too: the schema was not the problem, so keep asking for it.
            self._schema_refused = self.config.structured_output == "off"
        if status in (401, 403) and self._vault_key is not None:
            self._key_rejected = True  # read the key from Vault again before the next request
        if 300 <= status < 400:
            raise redirected(self.endpoint_host, status) from exc
        if status not in RETRYABLE_STATUS:
            raise auth_or_request_failure(self.endpoint_host, status, self._key_setting) from exc

    async def _pause(
        self,
        what: str,
        status: int | None,
        attempt: int,
        attempts: int,
        progress: Progress,
        headers: Any,
    ) -> None:
        """Wait before the next attempt: as long as the endpoint asked, else a jittered backoff."""
        asked = retry_after_s(dict(headers))
        wait = asked if asked is not None else backoff_s(attempt, base_s=_BACKOFF_BASE_S, cap_s=_BACKOFF_CAP_S)
        left = anyio.current_effective_deadline() - anyio.current_time()  # the call's limit, set by complete()
        if wait >= left:
            if status is None:
                raise unreachable(self.endpoint_host, attempt)
            if asked is not None:
                raise gave_up(self.endpoint_host, status, attempt, asked_wait_s=asked, left_s=left)
            raise gave_up(self.endpoint_host, status, attempt, left_s=left, out_of_time=True)
        reason = "as the endpoint asked" if asked is not None else "backing off"
        await progress.say(f"{what} from {self.endpoint_host}; retrying in {wait:.1f} s ({reason}), "
                           f"attempt {attempt + 1} of {attempts}")  # fmt: skip
        await anyio.sleep(wait)

    async def aclose(self) -> None:
        clients = [c for c in (self._client, *self._retired) if c is not None]
        self._client, self._retired = None, []
        for client in clients:
            await client.close()


def _import_openai() -> None:
    import openai  # noqa: F401


def _reply(response: Any, requested_model: str, attempts: int, structured: bool, host: str) -> LLMReply:
    """The reply as this server uses it: every field the endpoint sent checked for its type and bounded."""
    try:
        choice = response.choices[0]
        content = choice.message.content
    except (AttributeError, IndexError, KeyError, TypeError) as exc:
        raise invalid_reply(host, "something that is not a chat completion (no message)") from exc
    if not isinstance(content, str | None):
        raise invalid_reply(host, f"a message whose content is not text (JSON {type(content).__name__})")
    usage, problem = token_usage(getattr(response, "usage", None))
    return LLMReply(
        content=encodable(content or ""),
        model=bounded_text(getattr(response, "model", None)) or requested_model,
        usage=usage,
        finish_reason=bounded_text(getattr(choice, "finish_reason", None)),
        attempts=attempts,
        structured=structured,
        usage_problem=problem,
    )
