"""The read tools: runbooks and inventory from the store, returned as data with their provenance.

Store content is untrusted data: a key or token pasted into a runbook is replaced with a marker before it is
returned, and the output says how many were.
"""

import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contracts import Decision, SideEffect
from contracts.names import EntryName
from ledger import REDACTED, Scrubber
from server.governance.spec import LOCAL_READ, Args, Deps, Returns, ToolResult, ToolSpec
from server.stores import Entry, LocalReads
from server.tools.derived import Derived

__all__ = ["LIST_DOCS", "READ_DOCS", "READ_INVENTORY", "redaction_note", "scrubbed"]


class ReadDocsArgs(Args):
    name: EntryName = Field(description="The runbook or document to read, as listed by list_docs.")


class ListDocsArgs(Args):
    pass


class ReadInventoryArgs(Args):
    name: EntryName | None = Field(
        default=None, description="The inventory to read. Omit it for the default inventory."
    )


# What these tools return in `data`, for their output schemas (docstrings and descriptions are what a model reads).
class EntryData(BaseModel):
    """The entry read, its secrets replaced."""

    model_config = ConfigDict(extra="forbid")

    name: str
    format: str = Field(description='"markdown", "text" or "json"; a Vault runbook may declare another.')
    content: Any = Field(description="The text, or the parsed JSON when format is json.")


class DocNames(BaseModel):
    model_config = ConfigDict(extra="forbid")

    docs: list[str] = Field(description="Names to pass to read_docs.")


def redaction_note(count: int, where: str) -> str:
    """What a reader must know when secrets were taken out of what they are shown."""
    values = "1 secret-looking value" if count == 1 else f"{count} secret-looking values"
    return f"{values} in {where} {'was' if count == 1 else 'were'} replaced with {REDACTED}"


_NOT_RETURNED = ": secrets are never returned; ask an operator for one you need."


def _redacted(entry: Entry, scrubber: Scrubber) -> tuple[Any, int]:
    return scrubber.redact(entry.content)


scrubbed = Derived(_redacted)
"""The entry's content with its secrets replaced, and how many were (kept while the entry is unchanged)."""


@functools.lru_cache(maxsize=256)
def _read_of(action: str, where: str) -> SideEffect:
    """The side effect a read records; one per entry read, shared by its outputs (nothing changes one)."""
    return SideEffect(type=action, target=where, reversible=True)


def _read_result(entry: Entry, action: str, scrubber: Scrubber) -> ToolResult:
    where = f"{entry.source.kind}/{entry.name}"
    content, redacted = scrubbed(entry, scrubber)
    notes = f"Read {where} from the {entry.source.store} store."
    if redacted:
        notes += f" {redaction_note(redacted, where)}{_NOT_RETURNED}"
    return ToolResult(
        decision=Decision.EXECUTE,
        confidence=1.0,
        data={"name": entry.name, "format": entry.format, "content": content},
        side_effects=[_read_of(action, where)],
        sources=[entry.source],
        notes_for_humans=notes,
    )


async def _read_docs(args: ReadDocsArgs, deps: Deps) -> ToolResult:
    return _read_result(await deps.store.read_doc(args.name), "read_docs", deps.scrubber)


async def _list_docs(args: ListDocsArgs, deps: Deps) -> ToolResult:
    # A file's name is store content too (`AKIA….md` is a key, however it got there).
    names, redacted = deps.scrubber.redact(await deps.store.list_docs())
    notes = f"{len(names)} documents in the {deps.store.kind} store."
    return ToolResult(
        decision=Decision.EXECUTE,
        confidence=1.0,
        data={"docs": names},
        side_effects=[SideEffect(type="read_docs", target="docs/", reversible=True)],
        notes_for_humans=f"{notes} {redaction_note(redacted, 'the names')}{_NOT_RETURNED}" if redacted else notes,
    )


async def _read_inventory(args: ReadInventoryArgs, deps: Deps) -> ToolResult:
    entry = await deps.store.read_inventory(args.name or deps.default_inventory)
    return _read_result(entry, "read_inventory", deps.scrubber)


def _read_docs_now(args: ReadDocsArgs, deps: Deps, store: LocalReads) -> ToolResult:
    return _read_result(store.read_doc_now(args.name), "read_docs", deps.scrubber)


def _read_inventory_now(args: ReadInventoryArgs, deps: Deps, store: LocalReads) -> ToolResult:
    entry = store.read_inventory_now(args.name or deps.default_inventory)
    return _read_result(entry, "read_inventory", deps.scrubber)


READ_DOCS = ToolSpec(
    name="read_docs",
    title="Read a runbook",
    description=(
        "Read one runbook or document from the infrastructure documentation store. Returns its content in "
        "`data.content` (Markdown or JSON) with provenance. Call list_docs first if you do not know the exact "
        "name. Read-only; every call is recorded in an audit ledger."
    ),
    actions=("read_docs",),
    args=ReadDocsArgs,
    capability=_read_docs,
    hints=LOCAL_READ,
    local=_read_docs_now,
    returns=Returns(data=EntryData),
)

LIST_DOCS = ToolSpec(
    name="list_docs",
    title="List runbooks",
    description=(
        "List the names of the runbooks and documents in the documentation store (in `data.docs`). Use a name "
        "with read_docs. Read-only; every call is recorded in an audit ledger."
    ),
    actions=("read_docs",),
    args=ListDocsArgs,
    capability=_list_docs,
    hints=LOCAL_READ,
    returns=Returns(data=DocNames),
)

READ_INVENTORY = ToolSpec(
    name="read_inventory",
    title="Read the infrastructure inventory",
    description=(
        "Read the infrastructure inventory (cluster, nodes, pools, storage, networks, VMs, backups) as JSON in "
        "`data.content`. Omit `name` for the default inventory. Read-only; every call is recorded in an audit "
        "ledger."
    ),
    actions=("read_inventory",),
    args=ReadInventoryArgs,
    capability=_read_inventory,
    hints=LOCAL_READ,
    local=_read_inventory_now,
    returns=Returns(data=EntryData),
)
