"""What the LLM endpoint sends, checked before it is used: numbers for their type and range, text for its type
and length.

The SDK builds its reply objects without validating them, so a field holds whatever JSON the endpoint sent: a
token count may be negative, NaN, a string, `true`, or too large for the ledger to store; a model name may be
kilobytes long or carry the key the endpoint was sent. Secrets are scrubbed later, where the scrubber is (the
tool that asked); here each value gets its type and bounds.
"""

from typing import Any

from contracts import TokenUsage
from server.support.encoding import encodable

__all__ = ["MAX_FIELD_CHARS", "MAX_TOKEN_COUNT", "bounded_text", "token_usage"]

MAX_TOKEN_COUNT = 2**53
"""Token counts are below this: every JSON reader holds them exactly, and a day's sum fits the ledger's integers."""

MAX_FIELD_CHARS = 200
"""A model name, a finish reason: short labels. Past this the text is not a label, and is cut."""


def bounded_text(value: Any, limit: int = MAX_FIELD_CHARS) -> str | None:
    """`value` if it is text, cut at `limit` characters and made encodable; None for anything else."""
    if not isinstance(value, str):
        return None
    return encodable(value if len(value) <= limit else value[:limit] + "...")


def _count(value: Any) -> int | None:
    # `type() is int`: a bool is an int to Python, and 12.0 or "12" is not a count the endpoint made.
    return value if type(value) is int and 0 <= value < MAX_TOKEN_COUNT else None


def token_usage(usage: Any) -> tuple[TokenUsage | None, str | None]:
    """The usage the endpoint reported, or None and why it cannot be believed; (None, None) when there is none.

    Prompt and completion counts must be integers from 0 to 2**53; a total, when sent, must be their sum.
    """
    if usage is None:
        return None, None
    fields = {name: getattr(usage, name, None) for name in ("prompt_tokens", "completion_tokens", "total_tokens")}
    prompt, completion = _count(fields["prompt_tokens"]), _count(fields["completion_tokens"])
    if prompt is None or completion is None:
        bad = "prompt_tokens" if prompt is None else "completion_tokens"
        return None, f"{bad} is {_shown(fields[bad])}, not a count from 0 to 2**53"
    total = fields["total_tokens"]
    if total is not None and _count(total) != prompt + completion:
        return None, f"total_tokens is {_shown(total)}, not prompt_tokens + completion_tokens ({prompt + completion})"
    return TokenUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion), None


def _shown(value: Any) -> str:
    """A reported value as a message shows it: its JSON type, and the value itself only if it is a short number."""
    if value is None:
        return "missing"
    if isinstance(value, int | float) and not isinstance(value, bool) and len(repr(value)) <= 24:
        return repr(value)
    return f"a JSON {type(value).__name__}"
