"""A store whose every read monitoring times: what the runtime serves through when telemetry is on, so a server
with it off reads through the store itself and pays nothing for it."""

from server.stores.base import Entry, KeySource, LocalReads, Store
from server.telemetry import Signals

__all__ = ["ObservedStore"]


class ObservedStore:
    """`store`'s reads, each inside `signals.store_read` (a span, a latency); everything else is the store's."""

    def __init__(self, store: Store, signals: Signals) -> None:
        self._store = store
        self._signals = signals
        self.kind = store.kind
        reads = store.local_reads
        self._local = None if reads is None else _ObservedReads(reads, self.kind, signals)

    async def read_doc(self, name: str) -> Entry:
        with self._signals.store_read(self.kind, "docs"):
            return await self._store.read_doc(name)

    async def list_docs(self) -> list[str]:
        with self._signals.store_read(self.kind, "list"):
            return await self._store.list_docs()

    async def read_inventory(self, name: str) -> Entry:
        with self._signals.store_read(self.kind, "inventory"):
            return await self._store.read_inventory(name)

    async def list_inventories(self) -> list[str]:
        with self._signals.store_read(self.kind, "list"):
            return await self._store.list_inventories()

    async def aclose(self) -> None:
        await self._store.aclose()

    @property
    def local_reads(self) -> LocalReads | None:
        return self._local

    @property
    def llm_key(self) -> KeySource | None:
        return self._store.llm_key


class _ObservedReads:
    def __init__(self, reads: LocalReads, kind: str, signals: Signals) -> None:
        self._reads = reads
        self._kind = kind
        self._signals = signals

    def read_doc_now(self, name: str) -> Entry:
        with self._signals.store_read(self._kind, "docs"):
            return self._reads.read_doc_now(name)

    def read_inventory_now(self, name: str) -> Entry:
        with self._signals.store_read(self._kind, "inventory"):
            return self._reads.read_inventory_now(name)

    def list_docs_now(self) -> list[str]:
        with self._signals.store_read(self._kind, "list"):
            return self._reads.list_docs_now()

    def list_inventories_now(self) -> list[str]:
        with self._signals.store_read(self._kind, "list"):
            return self._reads.list_inventories_now()
