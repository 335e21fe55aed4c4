"""Turning an LLM's text into a validated contract, or saying precisely why it could not be."""

import json
import re
from typing import TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["ParseFailure", "parse_reply", "truncate"]

_M = TypeVar("_M", bound=BaseModel)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


class ParseFailure(Exception):
    """The reply holds no valid object; the message says what was wrong, for the human who reads it."""


def _candidates(text: str) -> list[str]:
    stripped = text.strip()
    found = [stripped]
    found += [m.group(1).strip() for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        found.append(text[start : end + 1])
    return found


def parse_reply(text: str, model: type[_M]) -> _M:
    """Validate the first JSON object found in `text` (whole, fenced, or embedded in prose) as `model`."""
    schema_error: ValidationError | None = None
    for candidate in _candidates(text):
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            schema_error = schema_error or exc
    if schema_error is not None:
        fields = sorted({".".join(map(str, e["loc"])) or "(root)" for e in schema_error.errors()})
        raise ParseFailure(f"the reply's JSON does not match the {model.__name__} schema (fields: {', '.join(fields)})")
    raise ParseFailure("the reply contains no JSON object")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated {len(text) - limit} characters]"
