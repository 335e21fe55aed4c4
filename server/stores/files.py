"""The embedded store: a directory with `docs/` and `inventory/`, the default when no Vault is configured."""

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from contracts import SourceRef
from server.failures import ToolFailure, entry_not_found, entry_too_large
from server.names import is_valid_name
from server.offload import run_blocking
from server.stores.base import Entry

__all__ = ["DOC_SUFFIXES", "FileStore"]

DOC_SUFFIXES = {".md": "markdown", ".txt": "text", ".json": "json"}
_INVENTORY_SUFFIXES = {".json": "json"}


class FileStore:
    kind = "file"

    def __init__(self, root: Path, *, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.root = root
        self._max_bytes = max_bytes
        self._resolved: dict[str, Path] = {}

    async def read_doc(self, name: str) -> Entry:
        return await run_blocking(lambda: self.read_doc_now(name))

    async def list_docs(self) -> list[str]:
        return await run_blocking(lambda: self._list("docs", DOC_SUFFIXES))

    async def read_inventory(self, name: str) -> Entry:
        return await run_blocking(lambda: self.read_inventory_now(name))

    async def list_inventories(self) -> list[str]:
        return await run_blocking(lambda: self._list("inventory", _INVENTORY_SUFFIXES))

    async def aclose(self) -> None:
        return None

    # -- blocking, run in worker threads -------------------------------------------------------

    def read_doc_now(self, name: str) -> Entry:
        """Blocking: for a worker thread that already holds the call's recorded intent."""
        return self._read("docs", name, DOC_SUFFIXES)

    def read_inventory_now(self, name: str) -> Entry:
        """Blocking: for a worker thread that already holds the call's recorded intent."""
        return self._read("inventory", name, _INVENTORY_SUFFIXES)

    def _folder(self, kind: str) -> Path:
        # Resolved once (a dozen system calls); checked on every call, so a folder that goes away is reported.
        folder = self._resolved.get(kind) or (self.root / kind).resolve()
        if not folder.is_dir():
            raise ToolFailure(
                "STORE_UNAVAILABLE",
                f"The file store has no {kind}/ folder under {self.root}.",
                recommended_action=f"Set PLANNER_MCP_DATA to a directory containing {kind}/, or unset it "
                "to use the bundled example data.",
            )
        self._resolved[kind] = folder
        return folder

    def _list(self, kind: str, suffixes: dict[str, str]) -> list[str]:
        folder = self._folder(kind)
        names = {p.stem for p in folder.iterdir() if p.suffix in suffixes and p.is_file() and is_valid_name(p.stem)}
        return sorted(names)

    def _find(self, folder: Path, kind: str, name: str, suffixes: dict[str, str]) -> tuple[Path, str]:
        # The name was validated at the gate; checking again here keeps the store safe on its own.
        if not is_valid_name(name):
            raise ToolFailure(
                "INVALID_NAME",
                f"{name[:80]!r} is not a valid {kind} name.",
                recommended_action="Use letters, digits and single '.', '_' or '-' only.",
            )
        candidates = [(folder / f"{name}{suffix}", fmt) for suffix, fmt in suffixes.items()]
        if Path(name).suffix in suffixes:
            candidates.insert(0, (folder / name, suffixes[Path(name).suffix]))
        for path, fmt in candidates:
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):
                return path, fmt  # a file right in the folder (the name has no '/'): it cannot lead out
            if stat.S_ISLNK(mode):
                # A symlink inside the folder must not lead out of it.
                resolved = path.resolve()
                if resolved.is_file() and resolved.is_relative_to(folder):
                    return resolved, fmt
        raise entry_not_found(kind, name)

    def _read(self, kind: str, name: str, suffixes: dict[str, str]) -> Entry:
        folder = self._folder(kind)
        path, fmt = self._find(folder, kind, name, suffixes)
        raw = path.read_bytes()
        if len(raw) > self._max_bytes:
            raise entry_too_large(kind, name, len(raw), self._max_bytes)
        content: Any
        try:
            text = raw.decode("utf-8")
            content = json.loads(text) if fmt == "json" else text
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ToolFailure(
                "INVALID_ENTRY",
                f"The {kind} entry {name!r} is not valid {'JSON' if fmt == 'json' else 'UTF-8 text'}: {exc}.",
                recommended_action="Ask an operator to fix the file in the store.",
            ) from exc
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
        return Entry(
            name=path.stem,
            format=fmt,
            content=content,
            source=SourceRef(kind=kind, name=path.stem, store=self.kind, version=digest),
        )
