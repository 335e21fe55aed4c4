"""What every store offers the tools: named docs and inventories, each read with its provenance."""

from dataclasses import dataclass
from typing import Any, Protocol

from contracts import SourceRef

__all__ = ["Entry", "Store"]


@dataclass(frozen=True)
class Entry:
    name: str
    format: str
    content: Any
    source: SourceRef
    digest: str | None = None
    """A digest of the content as read, by which what is worked out from it is kept; None: worked out each time."""


class Store(Protocol):
    kind: str

    async def read_doc(self, name: str) -> Entry: ...

    async def list_docs(self) -> list[str]: ...

    async def read_inventory(self, name: str) -> Entry: ...

    async def list_inventories(self) -> list[str]: ...

    async def aclose(self) -> None: ...
