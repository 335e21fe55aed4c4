import pytest
from pydantic import ValidationError

from contracts import SEED_FORBIDDEN_ACTIONS, AgentMetadata, AgentOutput, Decision, Plan, default_agent
from tests.conftest import PLAN


def test_the_default_agent_is_the_seeds_tier_0_planner() -> None:
    agent = default_agent()
    assert (agent.agent_id, agent.agent_role, agent.tier, agent.confidence_threshold) == (
        "llm-planner-001",
        "observer",
        0,
        0.7,
    )
    assert agent.allowed_side_effects == {"read_docs", "read_inventory", "read_logs", "generate_plan", "llm_inference"}
    assert agent.forbidden_actions == set(SEED_FORBIDDEN_ACTIONS)


def test_an_action_the_policy_does_not_name_is_denied() -> None:
    agent = default_agent()
    assert agent.permits("read_docs")
    assert not agent.permits("analyze_everything")
    assert not agent.permits("ssh")


def test_an_action_both_allowed_and_forbidden_is_denied() -> None:
    agent = default_agent().model_copy(update={"allowed_side_effects": frozenset({"read_docs", "ssh"})})
    assert not agent.permits("ssh")
    assert not agent.permits_all(["read_docs", "ssh"])


def test_metadata_refuses_unknown_fields_and_a_bare_string_of_actions() -> None:
    base = default_agent().model_dump()
    with pytest.raises(ValidationError, match="allowed_side_efects"):
        AgentMetadata.model_validate({**base, "allowed_side_efects": ["read_docs"]})
    with pytest.raises(ValidationError, match="list of action names"):
        AgentMetadata.model_validate({**base, "allowed_side_effects": "read_docs"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tier", True),
        ("tier", 1.0),
        ("tier", "1"),
        ("confidence_threshold", True),
        ("confidence_threshold", "0.9"),
        ("daily_token_budget", True),
        ("daily_token_budget", 1000.0),
        ("confidence_reporting", 1),
        ("confidence_reporting", "yes"),
        ("models_by_tier", {True: ["m"]}),
        ("models_by_tier", {1.0: ["m"]}),
    ],
)
def test_a_number_or_switch_of_another_type_is_refused_not_converted(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        AgentMetadata.model_validate({**default_agent().model_dump(), field: value})


def test_a_plan_needs_steps_and_a_confidence_between_0_and_1() -> None:
    assert Plan.model_validate(PLAN).steps[1].rollback == "ha-manager remove"
    with pytest.raises(ValidationError):
        Plan.model_validate({**PLAN, "steps": []})
    with pytest.raises(ValidationError):
        Plan.model_validate({**PLAN, "confidence": 1.5})


def test_agent_output_bounds_confidence_and_names_its_decision() -> None:
    fields = {"agent_id": "a", "version": "1", "timestamp": "t", "action": "x", "request_id": "r"}
    assert AgentOutput(**fields, decision=Decision.ESCALATE, confidence=0.2).model_dump(mode="json")["decision"] == (
        "ESCALATE"
    )
    with pytest.raises(ValidationError):
        AgentOutput(**fields, decision=Decision.EXECUTE, confidence=-0.1)
