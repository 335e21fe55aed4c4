"""Turning an LLM's text into a validated contract, or saying precisely why it could not be.

A reply must hold exactly one object that validates. Every JSON object in it is a candidate, wherever it stands
(the whole reply, a fenced block, inside prose): a reply that quotes a plan from a document before its own would
otherwise hand on whichever came first, and a document can be written to be quoted.
"""

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["MAX_OPENINGS", "MAX_READ_PER_CHARACTER", "ParseFailure", "parse_reply", "truncate"]

_M = TypeVar("_M", bound=BaseModel)

_OPENING = re.compile(r'\{[ \t\n\r]*"')
"""Where an object with a field can begin. The contracts all have required fields, so no candidate is `{}`; a
lone brace in prose (`{name}`) is not an opening."""

MAX_OPENINGS = 256
"""Openings examined, decoded or not. A plan or an analysis is one; a reply with more is not one to hand on."""

MAX_READ_PER_CHARACTER = 4
"""Characters that openings which do not decode may read in all, per character of the reply. Such an opening is
read to where it breaks, and nested ones break at the same place: unbounded, that is quadratic."""


class ParseFailure(Exception):
    """The reply holds no valid object, or several; the message says which, for the human who reads it."""


def _objects(text: str) -> tuple[list[tuple[dict[str, Any], int]], int]:
    """Every JSON object in `text` that lies inside no other, left to right, each with its length; and how far
    the longest false start read.

    Each object is decoded from its own opening and the search goes on after its end, so what it holds is read
    once. An opening that does not decode is a false start: the search goes on from the next character, so a
    stray brace cannot hide an object after it. Past the bounds the reply is refused rather than searched in
    part, since the part not searched could hold a second candidate.
    """
    decoder = json.JSONDecoder()
    found: list[tuple[dict[str, Any], int]] = []
    openings, read, longest_false_start, allowed = 0, 0, 0, MAX_READ_PER_CHARACTER * len(text)
    match = _OPENING.search(text)
    while match is not None:
        openings += 1
        if openings > MAX_OPENINGS:
            raise ParseFailure(f"the reply has more than {MAX_OPENINGS} places where a JSON object may begin")
        start = match.start()
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            reached = exc.pos - start
        except RecursionError:  # nested too deeply to be a contract; how far it read is not told
            reached = len(text) - start
        else:
            found.append((value, end - start))
            match = _OPENING.search(text, end)
            continue
        read, longest_false_start = read + reached, max(longest_false_start, reached)
        if read > allowed:
            raise ParseFailure("the reply has more malformed JSON than is searched")
        match = _OPENING.search(text, start + 1)
    return found, longest_false_start


def parse_reply(text: str, model: type[_M]) -> _M:
    """The one object in `text` that validates as `model`. The same object written twice is one candidate."""
    objects, longest_false_start = _objects(text)
    found: dict[str, _M] = {}
    schema_error: tuple[int, ValidationError] | None = None
    for value, length in objects:
        try:
            candidate = model.model_validate(value)
        except ValidationError as exc:
            if schema_error is None or length > schema_error[0]:
                schema_error = (length, exc)
            continue
        found.setdefault(candidate.model_dump_json(), candidate)
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        raise ParseFailure(
            f"the reply holds {len(found)} different candidate {model.__name__} objects and none was chosen "
            "(one may be quoted from a document)"
        )
    # The largest object is the one meant as the answer, unless broken JSON reaches further (a reply cut short).
    if schema_error is not None and schema_error[0] > longest_false_start:
        fields = sorted({".".join(map(str, e["loc"])) or "(root)" for e in schema_error[1].errors()})
        raise ParseFailure(f"the reply's JSON does not match the {model.__name__} schema (fields: {', '.join(fields)})")
    raise ParseFailure("the reply contains no JSON object")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated {len(text) - limit} characters]"
