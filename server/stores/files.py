"""The embedded store: a directory with `docs/` and `inventory/`, the default when no Vault is configured.

Whoever can write the data folder must not be able to make the server read a file outside it. So no entry is
looked up by a path: the data folder is opened once, and each read opens its kind folder and then its entry, one
name at a time relative to the folder already open, with O_NOFOLLOW. (openat2's RESOLVE_BENEATH would add
nothing: no path of more than one component is ever opened.) No symlink is followed anywhere, not even one that
stays inside: there is then no rule about where a link may lead to get wrong. A kind folder swapped for a link,
between reads or during one, is refused; so is a file with a second hard link, which could be its name outside
the folder. Listing applies the same rules, so it names only what a read would serve.

The link count cannot be read at one instant with the name it belongs to: it is checked on the open file and again
under its name, and a second link made and removed in step with a read can still pass both looks. Only the
kernel's `fs.protected_hardlinks` keeps a writer of the folder from linking a file it cannot read in the first place.
"""

import errno
import functools
import hashlib
import json
import os
import stat
import threading
import weakref
from pathlib import Path
from typing import Any, Self

from contracts import ErrorKind, SourceRef
from contracts.names import is_valid_name
from server.call.failures import ToolFailure, entry_not_found, entry_too_large
from server.call.intent_first import run_blocking
from server.stores.base import Entry

__all__ = ["DOC_SUFFIXES", "FileStore"]

DOC_SUFFIXES = {".md": "markdown", ".txt": "text", ".json": "json"}
_INVENTORY_SUFFIXES = {".json": "json"}
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FOLDER_FLAGS = _ROOT_FLAGS | os.O_NOFOLLOW
_ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# What an open of an entry says when there is nothing the store serves by that name: no file, a symlink
# (ELOOP; EMLINK on the BSDs), a socket or a device. Any other error is the store's trouble, and said so.
_ABSENT = frozenset({errno.ENOENT, errno.ELOOP, errno.EMLINK, errno.ENXIO, errno.ENODEV})
_KEPT_PARSES = 64
_SET_DATA = (
    "Set PLANNER_MCP_DATA to a directory holding docs/ and inventory/ folders (not links), or unset it to use "
    "the bundled example data."
)
_CHECK_DATA = "Try again; if it persists, ask an operator to check the data folder's files and their permissions."


class FileStore:
    kind = "file"

    def __init__(self, root: Path, *, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.root = root
        self._max_bytes = max_bytes
        self._root_fd: int | None = None
        self._opening = threading.Lock()
        self._parsed: dict[tuple[str, str], tuple[str, Any]] = {}

    async def read_doc(self, name: str) -> Entry:
        return await run_blocking(lambda: self.read_doc_now(name))

    async def list_docs(self) -> list[str]:
        return await run_blocking(self.list_docs_now)

    async def read_inventory(self, name: str) -> Entry:
        return await run_blocking(lambda: self.read_inventory_now(name))

    async def list_inventories(self) -> list[str]:
        return await run_blocking(self.list_inventories_now)

    async def aclose(self) -> None:
        return None

    @property
    def local_reads(self) -> Self:
        """Its own blocking reads: a read opens a file in a local folder, quicker than a second thread trip."""
        return self

    @property
    def llm_key(self) -> None:
        return None

    # -- blocking, run in worker threads -------------------------------------------------------

    def read_doc_now(self, name: str) -> Entry:
        """Blocking: for a worker thread that already holds the call's recorded intent."""
        return self._read("docs", name, DOC_SUFFIXES)

    def read_inventory_now(self, name: str) -> Entry:
        """Blocking: for a worker thread that already holds the call's recorded intent."""
        return self._read("inventory", name, _INVENTORY_SUFFIXES)

    def list_docs_now(self) -> list[str]:
        return self._list("docs", DOC_SUFFIXES)

    def list_inventories_now(self) -> list[str]:
        return self._list("inventory", _INVENTORY_SUFFIXES)

    def _root(self) -> int:
        """The data folder's descriptor, opened on first use and held. Links in the path PLANNER_MCP_DATA names
        are followed (that path is the operator's); a data folder replaced later is seen after a restart."""
        fd = self._root_fd
        if fd is None:
            with self._opening:
                if self._root_fd is None:
                    self._root_fd = self._open_root()
                fd = self._root_fd
        return fd

    def _open_root(self) -> int:
        try:
            fd = os.open(self.root, _ROOT_FLAGS)
        except OSError as exc:
            raise _unavailable(f"The file store cannot open {self.root}: {exc.strerror}.", _SET_DATA) from None
        weakref.finalize(self, os.close, fd)  # closed with the store, so never under a read in flight
        return fd

    def _folder(self, kind: str) -> int:
        """A new descriptor of `kind`/, a folder right in the data folder (not a link): opened on every call, so
        a folder replaced between two calls is seen at once."""
        root = self._root()
        try:
            return os.open(kind, _FOLDER_FLAGS, dir_fd=root)
        except OSError as exc:
            raise _unavailable(self._folder_problem(root, kind, exc), _SET_DATA) from None

    def _folder_problem(self, root: int, kind: str, exc: OSError) -> str:
        if exc.errno == errno.ENOENT:
            return f"The file store has no {kind}/ folder under {self.root}."
        if exc.errno in (errno.ENOTDIR, errno.ELOOP, errno.EMLINK):  # Linux says ENOTDIR for a link, too
            try:
                is_link = stat.S_ISLNK(os.stat(kind, dir_fd=root, follow_symlinks=False).st_mode)
            except OSError:
                is_link = False
            if is_link:
                return f"{kind}/ under {self.root} is a symbolic link, and the file store follows none."
            return f"{kind} under {self.root} is not a folder."
        return f"The file store cannot open {kind}/ under {self.root}: {exc.strerror}."

    def _list(self, kind: str, suffixes: dict[str, str]) -> list[str]:
        folder = self._folder(kind)
        try:
            with os.scandir(folder) as entries:
                return sorted({stem for entry in entries if (stem := _servable_stem(entry, suffixes))})
        except OSError as exc:
            why = f"The file store cannot list {kind}/ under {self.root}: {exc.strerror}."
            raise _unavailable(why, _CHECK_DATA) from None
        finally:
            os.close(folder)

    def _open(self, folder: int, kind: str, name: str, suffixes: dict[str, str]) -> tuple[int, int, str, str]:
        """An open descriptor of the entry's file, its size, stem and format; `entry_not_found` otherwise.

        Opened without blocking (a FIFO in the folder cannot stall the call), then checked with fstat: what is
        read is what was checked. The count of links is checked again under the entry's name, after the open:
        a second link removed between the open and the fstat leaves a count of one, but not this name.
        """
        _, dot, suffix = name.rpartition(".")
        candidates = [(f"{name}{s}", fmt) for s, fmt in suffixes.items()]
        if dot and f".{suffix}" in suffixes:
            candidates.insert(0, (name, suffixes[f".{suffix}"]))
        for file_name, fmt in candidates:
            try:
                fd = os.open(file_name, _ENTRY_FLAGS, dir_fd=folder)
            except OSError as exc:
                if exc.errno in _ABSENT:
                    continue
                raise
            try:
                held = os.fstat(fd)
                if _servable(held) and _still_named(held, folder, file_name):
                    return fd, held.st_size, file_name.rpartition(".")[0], fmt
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise entry_not_found(kind, name)

    def _read(self, kind: str, name: str, suffixes: dict[str, str]) -> Entry:
        # The name was validated at the gate; checking again here keeps the store safe on its own.
        if not is_valid_name(name):
            raise ToolFailure(
                ErrorKind.INVALID_NAME,
                f"{name[:80]!r} is not a valid {kind} name.",
                recommended_action="Use letters, digits and single '.', '_' or '-' only.",
            )
        folder = self._folder(kind)
        try:
            fd, size, stem, fmt = self._open(folder, kind, name, suffixes)
            try:
                if size > self._max_bytes:  # refused before reading it
                    raise entry_too_large(kind, name, size, self._max_bytes)
                raw = _read_all(fd, self._max_bytes + 1)
            finally:
                os.close(fd)
        except OSError as exc:
            why = f"The file store cannot read the {kind} entry {name!r}: {exc.strerror}."
            raise _unavailable(why, _CHECK_DATA) from None
        finally:
            os.close(folder)
        if len(raw) > self._max_bytes:  # it grew while being read
            raise entry_too_large(kind, name, len(raw), self._max_bytes)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()[:16]
        return Entry(
            name=stem, format=fmt, content=self._content(kind, stem, fmt, raw, digest),
            source=_source(kind, stem, self.kind, digest), digest=digest,
        )  # fmt: skip

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
                ErrorKind.INVALID_ENTRY,
                f"The {kind} entry {name!r} is not valid {'JSON' if fmt == 'json' else 'UTF-8 text'}: {exc}.",
                recommended_action="Ask an operator to fix the file in the store.",
            ) from exc
        if fmt == "json":
            if len(self._parsed) >= _KEPT_PARSES:
                self._parsed.clear()
            self._parsed[(kind, name)] = (digest, content)
        return content


@functools.lru_cache(maxsize=256)
def _source(kind: str, name: str, store: str, version: str) -> SourceRef:
    """An entry's provenance: one per version of the entry, shared by its reads' outputs (nothing changes one)."""
    return SourceRef(kind=kind, name=name, store=store, version=version)


def _servable(st: os.stat_result) -> bool:
    """A regular file with one link: a second link could be the file's own name outside the data folder."""
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def _still_named(held: os.stat_result, folder: int, file_name: str) -> bool:
    """Whether `file_name` in `folder` is, now, the file `held` describes, with its one link."""
    try:
        named = os.stat(file_name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return _servable(named) and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _servable_stem(entry: os.DirEntry[str], suffixes: dict[str, str]) -> str | None:
    """The name a read would serve this folder entry under, or None when a read would not serve it."""
    stem, dot, suffix = entry.name.rpartition(".")
    if not (dot and f".{suffix}" in suffixes and is_valid_name(stem)):
        return None
    try:
        return stem if _servable(entry.stat(follow_symlinks=False)) else None
    except FileNotFoundError:  # gone since the folder was read
        return None


def _unavailable(message: str, action: str) -> ToolFailure:
    return ToolFailure(ErrorKind.STORE_UNAVAILABLE, message, recommended_action=action)


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
