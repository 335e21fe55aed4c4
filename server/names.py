"""The one shape a store entry name may have, checked before any store is touched.

Letters and digits in runs joined by single `.`, `_` or `-`: no slashes, no `..`, no leading dot, no
percent sign, no whitespace or control characters. So no name can leave its folder or reach another
path, whatever store it is sent to.
"""

import re
from typing import Annotated

from pydantic import Field

__all__ = ["NAME_MAX_LENGTH", "NAME_PATTERN", "EntryName", "is_valid_name"]

NAME_MAX_LENGTH = 128
NAME_PATTERN = r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$"
_NAME = re.compile(NAME_PATTERN)

EntryName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        pattern=NAME_PATTERN,
        description="An entry name such as `vm-provisioning`: letters, digits and single `.`, `_` or `-`.",
    ),
]


def is_valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX_LENGTH and _NAME.fullmatch(name) is not None
