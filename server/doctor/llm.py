"""`planner-mcp doctor`'s LLM checks: configured, allowed by the policy, reachable, model listed, key accepted.

Only the model list is asked for (`GET /models`), never a completion, so the doctor spends no tokens. Whether
the key is accepted is known only when the endpoint refuses to list models without one; where it lists
them to anyone (OpenRouter does), the doctor says the key was not verified rather than guess.
"""

from collections.abc import Iterator
from typing import Any

from contracts import AgentMetadata
from server.config.settings import LLMConfig
from server.config.urls import shown
from server.doctor.check import Check
from server.llm.client import endpoint, endpoint_host
from server.llm.upstream import bounded_text

__all__ = ["llm_checks"]

_PROBE_TIMEOUT_S = 10.0
_SHOWN_MODELS = 8


def llm_checks(config: LLMConfig, agent: AgentMetadata | None) -> Iterator[Check]:
    if missing := config.missing():
        yield Check(
            "llm", "warn", "generate_plan and analyze will refuse: no LLM configured", "Set " + " and ".join(missing)
        )
        return
    host = endpoint_host(config)
    key = (
        "from the environment"
        if config.api_key
        else ("read from Vault on first use" if config.key_from_vault else "none")
    )
    where = shown(config.effective_base_url) if config.effective_base_url else host
    yield Check("llm", "ok", f"model {config.model} at {where}; key {key}")
    yield from _policy(config, agent)
    if config.key_from_vault:
        # Reading the key would mean fetching a secret; the Vault checks above prove the token may read it.
        yield from _endpoint(config, host, key=None, key_checked=False)
    else:
        yield from _endpoint(config, host, key=config.api_key.get_secret_value() if config.api_key else None)


def _policy(config: LLMConfig, agent: AgentMetadata | None) -> Iterator[Check]:
    if agent is None or config.model is None:
        return
    if not agent.permits_model(config.model):
        allowed = ", ".join(sorted(agent.allowed_models() or ())) or "none"
        yield Check(
            "llm.policy",
            "fail",
            f"model {config.model} is not allowed for tier {agent.tier} (allowed: {allowed}); LLM calls are refused",
            "Set PLANNER_MCP_MODEL to an allowed model, or list it under models_by_tier in the policy.",
        )
        return
    budget = f"{agent.daily_token_budget} tokens a day" if agent.daily_token_budget else "no daily token budget"
    yield Check("llm.policy", "ok", f"model {config.model} allowed for tier {agent.tier}; {budget}")


def _client(config: LLMConfig, key: str | None) -> Any:
    import openai

    return openai.OpenAI(
        api_key=key or "no-key-needed",
        **endpoint(config),
        timeout=min(config.timeout_s, _PROBE_TIMEOUT_S),
        max_retries=0,
    )


def _endpoint(config: LLMConfig, host: str, *, key: str | None, key_checked: bool = True) -> Iterator[Check]:
    import openai

    with _client(config, key) as client:
        try:
            # The endpoint's names, as the operator's terminal will show them: text only, each of bounded length.
            models = [name for m in client.models.list().data if (name := bounded_text(getattr(m, "id", None)))]
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            refused = f"refused the key (HTTP {exc.status_code})" if key else "requires a key and none is set"
            yield Check(
                "llm.endpoint",
                "fail",
                f"{host} {refused}",
                "Check OPENAI_API_KEY (or the key in Vault at api-keys/openrouter) for this endpoint.",
            )
            return
        except openai.APIStatusError as exc:
            yield Check(
                "llm.endpoint",
                "warn",
                f"{host} answers but does not list models (HTTP {exc.status_code}); model and key not checked",
                "Check OPENAI_BASE_URL: it should end in the API's version path, such as /v1.",
            )
            return
        except openai.APIConnectionError as exc:
            kind = "timed out" if isinstance(exc, openai.APITimeoutError) else "could not be reached"
            yield Check(
                "llm.endpoint",
                "fail",
                f"{host} {kind}",
                "Check OPENAI_BASE_URL, the network path to it, and that the endpoint is running.",
            )
            return
        yield Check("llm.endpoint", "ok", f"{host} answers and lists {len(models)} models")
        yield _model(config, models)
        if key_checked:
            yield _key(client, host, key)
        else:
            yield Check("llm.key", "ok", "the key is in Vault: not read by the doctor (the Vault checks cover access)")


def _model(config: LLMConfig, models: list[str]) -> Check:
    if config.model in models:
        return Check("llm.model", "ok", f"{config.model} is listed by the endpoint")
    shown = ", ".join(sorted(models)[:_SHOWN_MODELS]) + (", ..." if len(models) > _SHOWN_MODELS else "")
    return Check(
        "llm.model",
        "fail",
        f"{config.model} is not among the models the endpoint lists ({shown or 'none'})",
        "Set PLANNER_MCP_MODEL to one of the listed models.",
    )


def _key(client: Any, host: str, key: str | None) -> Check:
    """Ask again without the key: only an endpoint that then refuses has really checked the key."""
    import openai

    try:
        client.models.list(extra_headers={"Authorization": openai.omit})
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        return Check("llm.key", "ok", f"{host} accepted the key (and refuses requests without one)")
    except openai.APIError:
        return Check("llm.key", "warn", f"{host} answered the keyless probe oddly; key not verified")
    if key is None:
        return Check("llm.key", "ok", f"{host} needs no key")
    return Check(
        "llm.key",
        "warn",
        f"{host} lists models without a key, so the key was not verified (no tokens were spent to check it)",
        "The first generate_plan or analyze call will tell: an invalid key gives LLM_HTTP_ERROR with HTTP 401.",
    )
