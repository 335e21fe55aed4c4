"""What every store offers the tools: named docs and inventories, each read with its provenance, and what the
store can do beyond that, said through the protocol so that no caller needs to know which store it holds."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from contracts import SourceRef

__all__ = ["Entry", "KeySource", "LocalReads", "Store"]

KeySource = Callable[[], Awaitable[str | None]]
"""Reads the LLM's API key where a store keeps it: the key, or None when it holds none."""


@dataclass(frozen=True)
class Entry:
    name: str
    format: str
    content: Any
    source: SourceRef
    digest: str | None = None
    """A digest of the content as read, by which what is worked out from it is kept; None: worked out each time."""


class LocalReads(Protocol):
    """A store's reads, blocking: for a worker thread that already holds the call's recorded intent."""

    def read_doc_now(self, name: str) -> Entry: ...

    def read_inventory_now(self, name: str) -> Entry: ...

    def list_docs_now(self) -> list[str]: ...

    def list_inventories_now(self) -> list[str]: ...


class Store(Protocol):
    kind: str

    async def read_doc(self, name: str) -> Entry: ...

    async def list_docs(self) -> list[str]: ...

    async def read_inventory(self, name: str) -> Entry: ...

    async def list_inventories(self) -> list[str]: ...

    async def aclose(self) -> None: ...

    @property
    def local_reads(self) -> LocalReads | None:
        """The store's blocking reads when they are local and cheap, so a call may run whole (intent, read,
        outcome) in one trip to a worker thread, shared with the calls that arrive with it (see
        `server.governance.trips`); None when a read waits on a peer and must be awaited."""
        ...

    @property
    def llm_key(self) -> KeySource | None:
        """Where this store keeps the LLM's API key, when it keeps one."""
        ...
