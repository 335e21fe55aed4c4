"""Anticipated failures of a capability, each with the advice a caller needs to act on it.

Raised by stores and the LLM client, turned into an `ErrorInfo` by the gate. Messages are written
for the model and the human reading the output: specific, and never carrying a secret.
"""

from contracts import ErrorKind

__all__ = ["NOTHING_USABLE", "REFUSED_BEFORE_WORK", "ToolFailure", "entry_not_found", "entry_too_large"]

REFUSED_BEFORE_WORK = "Nothing: the call was refused before anything was read or asked of an LLM."
"""What a refusal did (`ErrorInfo.partial_progress`): the seed wrote "None", which reads as a missing value."""
NOTHING_USABLE = "The call's intent was recorded; the call produced nothing usable."
"""What a capability that failed did, unless it says more."""


class ToolFailure(Exception):
    def __init__(
        self, kind: ErrorKind, message: str, *, recommended_action: str, partial_progress: str = NOTHING_USABLE
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.recommended_action = recommended_action
        self.partial_progress = partial_progress


def entry_not_found(kind: str, name: str, where: str = "") -> ToolFailure:
    """No entry by this name in the store's `kind` folder (`where` says which store, when it helps)."""
    return ToolFailure(
        ErrorKind.NOT_FOUND,
        f"There is no {kind} entry named {name!r}{where}.",
        recommended_action="Call list_docs to see the available names."
        if kind == "docs"
        else "Omit the name to read the default inventory, or check the name with your operator.",
    )


def entry_too_large(kind: str, name: str, size: int, limit: int) -> ToolFailure:
    return ToolFailure(
        ErrorKind.TOO_LARGE,
        f"The {kind} entry {name!r} is {size} bytes; the limit is {limit}.",
        recommended_action="Ask an operator to split the entry or raise PLANNER_MCP_MAX_DOCUMENT_BYTES.",
    )
