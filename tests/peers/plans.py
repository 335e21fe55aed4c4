"""A plan and an analysis the server accepts, as an OpenAI-compatible peer returns them: for tests and the bench."""

from typing import Any

__all__ = ["AN_ANALYSIS", "A_PLAN"]

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

AN_ANALYSIS: dict[str, Any] = {
    "analysis": "pve02 has the least free memory (12 GiB of 128 GiB); move new guests to pve01.",
    "confidence": 0.8,
    "assumptions": ["The inventory is current"],
    "uncertainties": [],
}
