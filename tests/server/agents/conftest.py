"""Agents files as an operator writes them, and the tokens of their callers."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["agent", "agents_file", "digest"]


def digest(token: str) -> str:
    """What the agents file keeps of a static token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def agent(agent_id: str, tier: int, actions: Sequence[str], *callers: Mapping[str, str], **more: Any) -> dict[str, Any]:
    """One `[[agents]]` table: the fields a policy file has, its actions allowed, and its callers."""
    return {
        "agent_id": agent_id, "agent_role": "observer" if tier == 0 else "operator", "owner": "platform-team",
        "version": "1.0.0", "tier": tier, "allowed_side_effects": sorted(actions),
        "forbidden_actions": ["ssh", "execute_shell", "write_secrets"], **more, "callers": [dict(c) for c in callers],
    }  # fmt: skip


def agents_file(path: Path, agents: Sequence[Mapping[str, Any]], issuers: Sequence[Mapping[str, str]] = ()) -> Path:
    """The agents as TOML, written where `path` says (mode 600, as an operator keeps it)."""
    lines: list[str] = []
    for issuer in issuers:
        lines += ["[[issuers]]", *(f"{key} = {json.dumps(value)}" for key, value in issuer.items()), ""]
    for entry in agents:
        lines.append("[[agents]]")
        tables: dict[str, dict[str, Any]] = {}
        for key, value in entry.items():
            if key == "callers":
                continue
            if isinstance(value, dict):
                tables[key] = value
            else:
                lines.append(f"{key} = {json.dumps(value)}")
        for table, values in tables.items():
            lines += [f"[agents.{table}]", *(f'"{k}" = {json.dumps(v)}' for k, v in values.items())]
        for caller in entry.get("callers", []):
            lines += ["[[agents.callers]]", *(f"{key} = {json.dumps(value)}" for key, value in caller.items())]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)
    return path
