"""Agent metadata: who the agent is and what it may do (the seed's AGENT_METADATA, Foundation Doc section 4)."""

from collections.abc import Iterable

from pydantic import Field, field_validator

from contracts._base import Contract

__all__ = ["SEED_FORBIDDEN_ACTIONS", "AgentMetadata", "default_agent"]

SEED_FORBIDDEN_ACTIONS: tuple[str, ...] = (
    "ssh",
    "create_vm",
    "modify_vm",
    "delete_vm",
    "run_ansible",
    "run_terraform",
    "write_secrets",
    "execute_shell",
    "modify_files",
)
"""What the seed's tier-0 planner may never do. None of these has an implementation anywhere in this project."""


class AgentMetadata(Contract):
    """The policy an agent runs under: an allowlist of side effects and a denylist of actions.

    Anything the policy does not name is denied; an action named in both lists is denied. Numbers and switches
    are strict: `tier = true` or `tier = "1"` in a policy file is refused, not read as tier 1.
    """

    agent_id: str = Field(min_length=1, max_length=128)
    agent_role: str = Field(min_length=1, max_length=64)
    owner: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=32)
    tier: int = Field(ge=0, le=4, strict=True, description="0 observes and plans; higher tiers may act.")
    input_contract: str = "TaskRequest"
    output_contract: str = "AgentOutput"
    allowed_side_effects: frozenset[str] = frozenset()
    forbidden_actions: frozenset[str] = frozenset()
    confidence_reporting: bool = Field(default=True, strict=True)
    confidence_threshold: float = Field(default=0.7, ge=0.0, le=1.0, strict=True)
    models_by_tier: dict[int, frozenset[str]] | None = Field(
        default=None,
        description="The LLM models each tier may use; unset allows any model, a tier not listed may use none.",
    )
    daily_token_budget: int | None = Field(
        default=None,
        gt=0,
        le=2**53,
        strict=True,
        description="LLM tokens this agent may spend per UTC day, counted from the ledger (at most 2**53, the "
        "largest whole number every JSON reader keeps exact).",
    )

    @field_validator("allowed_side_effects", "forbidden_actions", mode="before")
    @classmethod
    def _actions_are_names(cls, value: object) -> object:
        if isinstance(value, str):
            raise ValueError("must be a list of action names, not a single string")
        return value

    @field_validator("models_by_tier", mode="before")
    @classmethod
    def _tiers_are_known(cls, value: object) -> object:
        if isinstance(value, dict):
            for tier, models in value.items():
                if str(tier) not in {"0", "1", "2", "3", "4"}:
                    raise ValueError(f"tier {tier!r} is not one of 0-4")
                if isinstance(models, str):
                    raise ValueError(f"tier {tier}: must be a list of model names, not a single string")
        return value

    def permits(self, action: str) -> bool:
        """Default deny: only a named, non-forbidden action is allowed."""
        return action in self.allowed_side_effects and action not in self.forbidden_actions

    def permits_all(self, actions: Iterable[str]) -> bool:
        return all(self.permits(action) for action in actions)

    def permits_model(self, model: str) -> bool:
        """Default deny once models are listed: a tier the policy does not name may use no model."""
        allowed = self.allowed_models()
        return allowed is None or model in allowed

    def allowed_models(self) -> frozenset[str] | None:
        """The models this agent's tier may use, or None when the policy does not restrict them."""
        if self.models_by_tier is None:
            return None
        return self.models_by_tier.get(self.tier, frozenset())


def default_agent() -> AgentMetadata:
    """The seed's tier-0 observer: reads docs, inventory and logs, and plans with an LLM."""
    return AgentMetadata(
        agent_id="llm-planner-001",
        agent_role="observer",
        owner="system",
        version="0.1.0",
        tier=0,
        allowed_side_effects=frozenset({"read_docs", "read_inventory", "read_logs", "generate_plan", "llm_inference"}),
        forbidden_actions=frozenset(SEED_FORBIDDEN_ACTIONS),
        confidence_threshold=0.7,
    )
