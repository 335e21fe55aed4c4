"""Stores the read tools draw from: the embedded file store by default, Vault when VAULT_ADDR is set."""

from server.stores.base import Entry, KeySource, LocalReads, Store
from server.stores.files import FileStore
from server.stores.observed import ObservedStore
from server.stores.vault import VaultStore

__all__ = ["Entry", "FileStore", "KeySource", "LocalReads", "ObservedStore", "Store", "VaultStore"]
