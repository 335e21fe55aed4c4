"""A thin async client for any OpenAI-compatible endpoint, with its errors translated once, here.

`openai` is imported on first use, so a server that never plans never pays for the import.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import anyio

from contracts import TokenUsage
from server.failures import ToolFailure
from server.settings import LLMConfig

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = ["LLMClient", "LLMReply"]

logger = logging.getLogger(__name__)

_DEFAULT_HOST = "api.openai.com"
_NO_KEY = "no-key-needed"  # Local endpoints (Ollama, vLLM) take any key; the SDK insists on one.


@dataclass(frozen=True)
class LLMReply:
    content: str
    model: str
    usage: TokenUsage | None


KeySource = Callable[[], Awaitable[str | None]]


class LLMClient:
    def __init__(self, config: LLMConfig, *, vault_key: KeySource | None = None) -> None:
        """`vault_key` reads the key from Vault, used when the config says the key is there (no OPENAI_API_KEY)."""
        self.config = config
        self._vault_key = vault_key if config.key_from_vault else None
        self._client: AsyncOpenAI | None = None
        self._opening = anyio.Lock()

    @property
    def endpoint_host(self) -> str:
        base_url = self.config.effective_base_url
        if base_url is None:
            return _DEFAULT_HOST
        return urlparse(base_url).hostname or _DEFAULT_HOST

    def check_configured(self) -> None:
        """Raise the failure that tells the caller exactly what to set, before any other work is done."""
        if missing := self.config.missing():
            raise ToolFailure(
                "LLM_NOT_CONFIGURED",
                "No LLM endpoint is configured for this server.",
                recommended_action="Set " + " and ".join(missing) + " in the server's environment "
                "(for example in the host's mcp.json `env`), then restart the server.",
            )

    async def _ensure_client(self) -> "AsyncOpenAI":
        self.check_configured()
        async with self._opening:
            if self._client is None:
                from openai import AsyncOpenAI

                self._client = AsyncOpenAI(
                    api_key=await self._key(),
                    base_url=self.config.effective_base_url,
                    timeout=self.config.timeout_s,
                    max_retries=self.config.max_retries,
                )
        return self._client

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
                "LLM_NOT_CONFIGURED",
                "No LLM key: OPENAI_API_KEY is not set and Vault has no api-keys/openrouter entry with an api_key.",
                recommended_action="Set OPENAI_API_KEY in the server's environment, or store the key in Vault at "
                "api-keys/openrouter (field api_key), or set OPENAI_BASE_URL to a local endpoint that needs no key.",
            )
        return _NO_KEY

    async def complete(self, messages: list[dict[str, str]], *, temperature: float) -> LLMReply:
        """One chat completion, with no tools offered: the model can only answer in text."""
        client = await self._ensure_client()
        model = self.config.model
        assert model is not None  # checked by _ensure_client
        import openai

        try:
            response: Any = await client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=self.config.max_tokens,
                temperature=temperature,
            )
        except openai.APITimeoutError as exc:
            raise ToolFailure(
                "LLM_TIMEOUT",
                f"The LLM endpoint {self.endpoint_host} did not answer within {self.config.timeout_s:g} s.",
                recommended_action="Retry later, or raise PLANNER_MCP_LLM_TIMEOUT for a slow local model.",
            ) from exc
        except openai.APIConnectionError as exc:
            raise ToolFailure(
                "LLM_UNREACHABLE",
                f"The LLM endpoint {self.endpoint_host} could not be reached.",
                recommended_action="Check OPENAI_BASE_URL and that the endpoint is running.",
            ) from exc
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403) and self._vault_key is not None:
                await self.aclose()  # the key in Vault may have been rotated: read it again on the next call
            raise _status_failure(exc.status_code, self.endpoint_host, self._key_setting) from exc
        return _reply(response, model)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _status_failure(status: int, host: str, key_setting: str) -> ToolFailure:
    # The response body is not repeated: endpoints echo request details, and the message must stay clean.
    if status in (401, 403):
        action = f"Check that the key ({key_setting}) is valid for this endpoint and may use this model."
    elif status == 404:
        action = "Check PLANNER_MCP_MODEL against the models the endpoint lists, and OPENAI_BASE_URL."
    elif status == 429:
        action = "The endpoint is rate limiting or out of quota: retry later."
    elif status >= 500:
        action = "The endpoint failed: retry later."
    else:
        action = "Check the request settings (model, max tokens) against the endpoint's documentation."
    return ToolFailure("LLM_HTTP_ERROR", f"The LLM endpoint {host} answered HTTP {status}.", recommended_action=action)


def _reply(response: Any, requested_model: str) -> LLMReply:
    try:
        content = response.choices[0].message.content or ""
    except (AttributeError, IndexError, TypeError) as exc:
        raise ToolFailure(
            "LLM_INVALID_REPLY",
            "The LLM endpoint answered without a message.",
            recommended_action="Check that OPENAI_BASE_URL points at an OpenAI-compatible chat completions API.",
        ) from exc
    usage = None
    if getattr(response, "usage", None) is not None:
        u = response.usage
        usage = TokenUsage(
            prompt_tokens=u.prompt_tokens or 0,
            completion_tokens=u.completion_tokens or 0,
            total_tokens=u.total_tokens or 0,
        )
    return LLMReply(content=content, model=getattr(response, "model", None) or requested_model, usage=usage)
