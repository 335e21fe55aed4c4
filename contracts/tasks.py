"""What a caller asks the agent to do (the seed's TaskRequest)."""

from typing import Any

from pydantic import Field

from contracts._base import Contract

__all__ = ["TaskRequest"]


class TaskRequest(Contract):
    task_type: str = Field(min_length=1, max_length=64, description='e.g. "generate_plan", "analyze"')
    description: str = Field(min_length=1)
    context: dict[str, Any] = {}
    constraints: list[str] = []
