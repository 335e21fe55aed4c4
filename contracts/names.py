"""The one shape a store entry name may have, checked before any store is touched.

Letters and digits in runs joined by single `.`, `_` or `-`: no slashes, no `..`, no leading dot, no
percent sign, no whitespace or control characters. So no name can leave its folder or reach another
path (another mount, `metadata/`, `api-keys/`), whatever store it is sent to.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

__all__ = ["INVALID_NAME_ERROR", "NAME_MAX_LENGTH", "NAME_PATTERN", "EntryName", "is_valid_name", "name_problem"]

NAME_MAX_LENGTH = 128
NAME_PATTERN = r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$"
INVALID_NAME_ERROR = "invalid_name"
"""The pydantic error type of a refused name, so the gate can report it as INVALID_NAME."""

_NAME = re.compile(NAME_PATTERN)

# The most telling reason first: a caller who sent `../x` should hear about `..`, not about dots in general.
_REASONS: tuple[tuple[str, str], ...] = (
    ("/", "contains '/': a name is one entry in its own folder and cannot reach another path or mount"),
    ("\\", "contains '\\': a name is one entry in its own folder and cannot reach another path"),
    ("..", "contains '..': a name cannot leave its folder"),
    ("%", "contains '%': percent-encoded names are not decoded, so they cannot smuggle a path"),
)


def name_problem(name: str) -> str | None:
    """Why `name` is refused, in words a caller can act on; None when it is a valid name."""
    if not name:
        return "is empty"
    if len(name) > NAME_MAX_LENGTH:
        return f"is longer than {NAME_MAX_LENGTH} characters"
    if _NAME.fullmatch(name):
        return None
    for fragment, reason in _REASONS:
        if fragment in name:
            return reason
    return "may contain only letters, digits and single '.', '_' or '-' between them"


def is_valid_name(name: str) -> bool:
    return name_problem(name) is None


def _check(name: str) -> str:
    if (problem := name_problem(name)) is not None:
        raise PydanticCustomError(INVALID_NAME_ERROR, "the name {problem}", {"problem": problem})
    return name


EntryName = Annotated[
    str,
    Field(
        description="An entry name such as `vm-provisioning`: letters, digits and single `.`, `_` or `-`.",
        json_schema_extra={"minLength": 1, "maxLength": NAME_MAX_LENGTH, "pattern": NAME_PATTERN},
    ),
    AfterValidator(_check),
]
