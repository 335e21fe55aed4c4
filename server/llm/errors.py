"""The LLM endpoint's failures, named by what the caller can do about them.

Messages name the endpoint's host and the status, never the response body: endpoints echo request details
(the key included, on some 401s), and every message must stay clean.
"""

__all__ = [
    "ReplyTooLarge",
    "auth_or_request_failure",
    "breaker_open",
    "gave_up",
    "invalid_reply",
    "redirected",
    "timed_out",
    "unreachable",
]

import math

from contracts import ErrorKind
from server.call.failures import ToolFailure


def timed_out(host: str, limit_s: float) -> ToolFailure:
    return ToolFailure(
        ErrorKind.LLM_TIMEOUT,
        f"The LLM endpoint {host} did not answer within this call's limit of {limit_s:g} s (retries included).",
        recommended_action="Retry later, or raise PLANNER_MCP_LLM_TIMEOUT for a slow local model.",
    )


def unreachable(host: str, attempts: int) -> ToolFailure:
    return ToolFailure(
        ErrorKind.LLM_UNREACHABLE,
        f"The LLM endpoint {host} could not be reached ({_tries(attempts)}).",
        recommended_action="Check OPENAI_BASE_URL and that the endpoint is running; `planner-mcp doctor` tests it.",
    )


def gave_up(
    host: str,
    status: int,
    attempts: int,
    *,
    asked_wait_s: float | None = None,
    left_s: float = 0,
    out_of_time: bool = False,
) -> ToolFailure:
    """A retryable status (429, 5xx) that did not clear within the retries or the time left.

    `asked_wait_s` is a wait the endpoint asked for (Retry-After) that the call cannot afford; `out_of_time`
    says our own backoff before the next attempt would outlast the call."""
    if asked_wait_s is not None:
        why = f"it asked to retry after {asked_wait_s:g} s, more than the {max(left_s, 0):.1f} s left of this call"
    elif out_of_time:
        why = f"{_tries(attempts)}, with {max(left_s, 0):.1f} s left of this call: too little to try again"
    else:
        why = _tries(attempts)
    if status == 429:
        return ToolFailure(
            ErrorKind.LLM_RATE_LIMITED,
            f"The LLM endpoint {host} is rate limiting (HTTP 429): {why}.",
            recommended_action=f"Retry after {asked_wait_s:g} s."
            if asked_wait_s is not None
            else "Retry later; if it persists, the key's quota or rate limit needs raising.",
        )
    return ToolFailure(
        ErrorKind.LLM_UNAVAILABLE,
        f"The LLM endpoint {host} failed (HTTP {status}): {why}.",
        recommended_action="The endpoint failed: retry later, or point OPENAI_BASE_URL at another endpoint.",
    )


def breaker_open(host: str, failures: int, last: str | None, retry_in_s: float) -> ToolFailure:
    """The endpoint was found down on `failures` calls in a row: this call sends nothing, and says when one will."""
    when = (
        f"calls fail fast for {math.ceil(retry_in_s)} s more, then one is sent to try it again"
        if retry_in_s > 0
        else "one call is trying it again now, and the others fail fast until it has an answer"
    )
    return ToolFailure(
        ErrorKind.LLM_UNAVAILABLE,
        f"The LLM endpoint {host} failed {failures} calls in a row (last: {last}); this call was not sent: {when}.",
        recommended_action="Retry after that; `planner-mcp doctor` shows what is wrong with the endpoint. Calls go "
        "through again by themselves once it answers.",
    )


def auth_or_request_failure(host: str, status: int, key_setting: str) -> ToolFailure:
    """A status that retrying cannot fix: the key, the model or the request is wrong."""
    if status in (401, 403):
        action = f"Check that the key ({key_setting}) is valid for this endpoint and may use this model."
    elif status == 404:
        action = "Check PLANNER_MCP_MODEL against the models the endpoint lists, and OPENAI_BASE_URL."
    else:
        action = "Check the request settings (model, PLANNER_MCP_LLM_MAX_TOKENS) against the endpoint's documentation."
    return ToolFailure(
        ErrorKind.LLM_HTTP_ERROR, f"The LLM endpoint {host} answered HTTP {status}.", recommended_action=action
    )


def invalid_reply(host: str, what: str) -> ToolFailure:
    """A success status whose body is not a chat completion: `what` says what it was instead."""
    return ToolFailure(
        ErrorKind.LLM_INVALID_REPLY,
        f"The LLM endpoint {host} answered with {what}.",
        recommended_action="Check that OPENAI_BASE_URL points at an OpenAI-compatible chat completions API, not a "
        "proxy or an error page; retry later if the endpoint is failing.",
    )


def _tries(attempts: int) -> str:
    return "1 attempt" if attempts == 1 else f"{attempts} attempts"


class ReplyTooLarge(Exception):
    """The endpoint's reply decodes to more than the cap; the rest of it was not read."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"the reply decodes to more than {cap} bytes")
        self.cap = cap


def redirected(host: str, status: int) -> ToolFailure:
    """A 3xx: not followed, since the request carries the prompt (and the key) to wherever it points."""
    return ToolFailure(
        ErrorKind.LLM_HTTP_ERROR,
        f"The LLM endpoint {host} answered with a redirect (HTTP {status}), which is not followed: the request "
        "carries the prompt, with the documents and inventory it quotes.",
        recommended_action="Set OPENAI_BASE_URL to the endpoint's own URL (its scheme, host and path up to /v1), "
        "so that no redirect is needed.",
    )
