"""The embedded store: a directory with `docs/` and `inventory/`, the default when no Vault is configured."""

import errno
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
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KEPT_PARSES = 64


class FileStore:
    kind = "file"

    def __init__(self, root: Path, *, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.root = root
        self._max_bytes = max_bytes
        self._resolved: dict[str, Path] = {}
        self._parsed: dict[tuple[str, str], tuple[str, Any]] = {}

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

    def _open(self, folder: Path, kind: str, name: str, suffixes: dict[str, str]) -> tuple[int, str, str]:
        """An open descriptor of the entry's regular file, its stem and format; `entry_not_found` otherwise.

        Opened without following a symlink and without blocking (a FIFO in the folder cannot stall the call),
        then checked with fstat: one path lookup per candidate, and what is read is what was checked.
        """
        # The name was validated at the gate; checking again here keeps the store safe on its own.
        if not is_valid_name(name):
            raise ToolFailure(
                "INVALID_NAME",
                f"{name[:80]!r} is not a valid {kind} name.",
                recommended_action="Use letters, digits and single '.', '_' or '-' only.",
            )
        base = f"{folder}{os.sep}"
        _, dot, suffix = name.rpartition(".")
        candidates = [(f"{name}{s}", fmt) for s, fmt in suffixes.items()]
        if dot and f".{suffix}" in suffixes:
            candidates.insert(0, (name, suffixes[f".{suffix}"]))
        for file_name, fmt in candidates:
            path = base + file_name
            try:
                fd = os.open(path, _OPEN_FLAGS)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    continue
                # A symlink inside the folder must not lead out of it.
                resolved = Path(path).resolve()
                if not (resolved.is_relative_to(folder) and resolved.is_file()):
                    continue
                try:
                    fd = os.open(resolved, _OPEN_FLAGS)
                except OSError:
                    continue
            if stat.S_ISREG(os.fstat(fd).st_mode):
                return fd, file_name.rpartition(".")[0], fmt  # a file right in the folder: the name has no '/'
            os.close(fd)
        raise entry_not_found(kind, name)

    def _read(self, kind: str, name: str, suffixes: dict[str, str]) -> Entry:
        folder = self._folder(kind)
        fd, stem, fmt = self._open(folder, kind, name, suffixes)
        try:
            size = os.fstat(fd).st_size
            if size > self._max_bytes:  # refused before reading it
                raise entry_too_large(kind, name, size, self._max_bytes)
            raw = _read_all(fd, self._max_bytes + 1)
        finally:
            os.close(fd)
        if len(raw) > self._max_bytes:  # it grew while being read
            raise entry_too_large(kind, name, len(raw), self._max_bytes)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
        return Entry(
            name=stem,
            format=fmt,
            content=self._content(kind, stem, fmt, raw, digest),
            source=SourceRef(kind=kind, name=stem, store=self.kind, version=digest),
        )

    def _content(self, kind: str, name: str, fmt: str, raw: bytes, digest: str) -> Any:
        """The text, or the parsed JSON. A parse is kept while the file's bytes are unchanged: parsing an
        inventory costs more than reading it. Nothing downstream changes a parsed value; it is shared."""
        kept = self._parsed.get((kind, name))
        if kept is not None and kept[0] == digest:
            return kept[1]
        try:
            text = raw.decode("utf-8")
            content = json.loads(text) if fmt == "json" else text
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ToolFailure(
                "INVALID_ENTRY",
                f"The {kind} entry {name!r} is not valid {'JSON' if fmt == 'json' else 'UTF-8 text'}: {exc}.",
                recommended_action="Ask an operator to fix the file in the store.",
            ) from exc
        if fmt == "json":
            if len(self._parsed) >= _KEPT_PARSES:
                self._parsed.clear()
            self._parsed[(kind, name)] = (digest, content)
        return content


def _read_all(fd: int, limit: int) -> bytes:
    """Up to `limit` bytes from `fd`: enough to see that a file is larger than allowed without reading it all."""
    chunks, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
