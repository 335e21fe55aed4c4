"""A plan the server accepts, as an OpenAI-compatible peer would return it: for tests and the benchmark."""

from typing import Any

__all__ = ["A_PLAN"]

A_PLAN: dict[str, Any] = {
    "title": "Add a VM to the prod pool",
    "summary": "Clone the template and register it with HA.",
    "confidence": 0.85,
    "assumptions": ["Template 9000 is current"],
    "uncertainties": [],
    "steps": [
        {"step": 1, "action": "Clone template 9000 to vmid 104", "reversible": True, "rollback": "qm destroy 104"},
        {"step": 2, "action": "Add vmid 104 to HA group prod-ha", "reversible": True, "rollback": "ha-manager remove"},
    ],
    "estimated_tier_required": 0,
    "risks": ["Capacity on pve02"],
}
