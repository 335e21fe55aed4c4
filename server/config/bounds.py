"""The range a number must fall in, told in words from the model's own constraints, for errors people read.

Pydantic says one violated bound ("less than or equal to 600", even of a NaN); the person fixing a value
wants the whole range, and the model's `Field` is the one place it is declared.
"""

from pydantic import BaseModel
from pydantic_core import ErrorDetails

__all__ = ["problem"]

_OUT_OF_RANGE = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"})
"""The pydantic error types a number out of its range raises."""

_WORDS = {"gt": "more than", "ge": "at least", "lt": "less than", "le": "at most"}


def problem(error: ErrorDetails, model: type[BaseModel] | None, field: object) -> str:
    """Pydantic's message for `error`, or for a number out of the range `model.field` declares, that whole range."""
    in_range = None
    if model is not None and isinstance(field, str) and error["type"] in _OUT_OF_RANGE:
        in_range = _accepted(model, field)
    if in_range is not None:
        return in_range
    # A validator's own sentence, without the "Value error, " pydantic puts before it.
    return error["msg"].removeprefix("Value error, ") if error["type"] == "value_error" else error["msg"]


def _accepted(model: type[BaseModel], field: str) -> str | None:
    """ "out of range: accepted at least 0 and at most 10" for `model.field`, or None if it declares no bound."""
    info = model.model_fields.get(field)
    constraints = info.metadata if info is not None else []
    bounds = [f"{word} {getattr(c, key)}" for c in constraints for key, word in _WORDS.items() if hasattr(c, key)]
    return f"out of range: accepted {' and '.join(bounds)}" if bounds else None
