"""Anticipated failures of a capability, each with the advice a caller needs to act on it.

Raised by stores and the LLM client, turned into an `ErrorInfo` by the gate. Messages are written
for the model and the human reading the output: specific, and never carrying a secret.
"""

__all__ = ["ToolFailure"]


class ToolFailure(Exception):
    def __init__(self, kind: str, message: str, *, recommended_action: str, partial_progress: str = "None") -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.recommended_action = recommended_action
        self.partial_progress = partial_progress
