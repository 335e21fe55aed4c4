"""The JSON an LLM is asked for: a plan (the seed's schema) and an analysis."""

from pydantic import Field

from contracts._base import Contract

__all__ = ["Analysis", "Plan", "PlanStep"]


class PlanStep(Contract):
    step: int = Field(ge=1, description="1-based position of the step.")
    action: str = Field(min_length=1, description="What is done in this step.")
    reversible: bool = Field(description="Whether the step can be undone.")
    rollback: str | None = Field(default=None, description="How to undo the step.")


class Plan(Contract):
    """An implementation plan. The server only proposes it; an executor of a higher tier would carry it out."""

    title: str = Field(min_length=1)
    summary: str = ""
    confidence: float = Field(ge=0.0, le=1.0)
    assumptions: list[str] = []
    uncertainties: list[str] = []
    steps: list[PlanStep] = Field(min_length=1)
    estimated_tier_required: int = Field(ge=0, le=4)
    risks: list[str] = []


class Analysis(Contract):
    """A structured analysis: the text plus how sure the model is and what it assumed."""

    analysis: str = Field(min_length=1)
    confidence: float = Field(ge=0.0, le=1.0)
    assumptions: list[str] = []
    uncertainties: list[str] = []
