"""What the ledger is asked to record: the intent of a call and its outcome."""

from dataclasses import dataclass
from typing import Any

__all__ = ["Intent", "Outcome"]


@dataclass(frozen=True, kw_only=True)
class Intent:
    """Recorded before anything is read or asked of an LLM."""

    request_id: str
    timestamp: str
    agent_id: str
    agent_version: str
    tier: int
    action: str
    arguments: dict[str, Any]
    tools_digest: str


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """Recorded before the result is sent; one `agent_actions` row in the seed's shape, plus provenance."""

    request_id: str
    timestamp: str
    agent_id: str
    agent_version: str
    tier: int
    action: str
    decision: str
    confidence: float
    success: bool
    arguments: dict[str, Any]
    tools_digest: str
    intent_id: int | None = None
    refused: bool = False
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float | None = None
    output_digest: str | None = None
    llm_model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
