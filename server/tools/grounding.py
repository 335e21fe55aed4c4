"""What an LLM tool puts in front of the model: store content read under the policy, with its provenance."""

import json
from dataclasses import dataclass, field

from contracts import ErrorKind, SideEffect, SourceRef
from ledger import Scrubber
from server.call.failures import ToolFailure
from server.governance.spec import Deps
from server.llm import DataBlock, truncate
from server.llm.prompts import rendered
from server.stores import Entry
from server.tools.derived import Derived
from server.tools.store_tools import redaction_note, scrubbed

__all__ = ["MAX_DOC_CHARS", "Grounding"]

MAX_DOC_CHARS = 32_000
"""Per document in the prompt: enough for a runbook, and a bound on what one call can cost."""

_BEFORE_ASKING = " before the model was asked."


def _inventory_text(entry: Entry, scrubber: Scrubber) -> tuple[str, int]:
    content, redacted = scrubbed(entry, scrubber)
    return rendered(content), redacted


_inventory_texts = Derived(_inventory_text)
"""The inventory as the model is shown it, scrubbed, and how many secrets were taken out: rendering it cost
more than the rest of the prompt, so it is kept while the entry is unchanged."""


@dataclass
class Grounding:
    """The data blocks a prompt is built from, and what reading them did (sources, side effects, caveats)."""

    inventory: DataBlock | None = None
    docs: list[DataBlock] = field(default_factory=list)
    sources: list[SourceRef] = field(default_factory=list)
    side_effects: list[SideEffect] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    def redacted(self, count: int, where: str, when: str = _BEFORE_ASKING) -> None:
        """Say, among the assumptions, that `count` secrets were taken out of `where` (when there were any)."""
        if count:
            self.assumptions.append(redaction_note(count, where) + when)

    async def add_inventory(self, deps: Deps) -> None:
        """The default inventory, when the policy allows the read; without it the plan is generic, and says so."""
        if not deps.agent.permits("read_inventory"):
            self.assumptions.append("The policy does not allow reading the inventory; the plan is generic.")
            return
        await deps.progress.say(f"Reading inventory/{deps.default_inventory}")
        try:
            entry = await deps.store.read_inventory(deps.default_inventory)
        except ToolFailure as failure:
            self.assumptions.append(f"Infrastructure inventory unavailable ({failure.kind}); the plan is generic.")
            return
        text, redacted = _inventory_texts(entry, deps.scrubber)
        self.redacted(redacted, f"inventory/{entry.name}")
        self.inventory = (f"inventory/{entry.name}", text)
        self.side_effects.append(SideEffect(type="read_inventory", target=f"inventory/{entry.name}"))
        self.sources.append(entry.source)

    async def add_docs(self, names: list[str], deps: Deps) -> None:
        """The documents the caller named. Each must exist: a plan must not quietly lack the runbook it was
        asked to follow."""
        if names and not deps.agent.permits("read_docs"):
            raise ToolFailure(
                ErrorKind.FORBIDDEN_ACTION,
                f"Agent {deps.agent.agent_id} may not read docs, so `docs` cannot be given to the model.",
                recommended_action="Call again without `docs`, or ask the operator for a policy that allows read_docs.",
            )
        for name in dict.fromkeys(names):
            await deps.progress.say(f"Reading docs/{name}")
            entry = await deps.store.read_doc(name)
            # Scrubbed whole, before it is cut: a key split by the cut would no longer look like one.
            content, redacted = deps.scrubber.redact(entry.content)
            self.redacted(redacted, f"docs/{name}")
            text = content if isinstance(content, str) else json.dumps(content, sort_keys=True)
            if len(text) > MAX_DOC_CHARS:
                text = truncate(text, MAX_DOC_CHARS)
                self.assumptions.append(f"Only the first {MAX_DOC_CHARS} characters of docs/{name} were used.")
            self.docs.append((f"docs/{name}", text))
            self.side_effects.append(SideEffect(type="read_docs", target=f"docs/{name}"))
            self.sources.append(entry.source)
