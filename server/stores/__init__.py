"""Stores the read tools draw from: the embedded file store now, Vault behind the same interface."""

from server.stores.base import Entry, Store
from server.stores.files import FileStore

__all__ = ["Entry", "FileStore", "Store"]
