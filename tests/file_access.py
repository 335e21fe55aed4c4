"""Real file access in tests: counting accesses under a folder, in every thread, without touching the server's
code; and making a file unwritable, as a full or read-only disk would."""

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["file_accesses_under", "read_only"]

_watched: list[tuple[str, list[str]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # An interpreter audit hook sees every real file access, in every thread, without touching our code. The file
    # store opens each folder and entry by its bare name, relative to a folder it holds open: such a name cannot
    # be placed, so it counts as an access under every folder watched.
    if _watched and event in ("open", "os.scandir", "os.listdir") and args and isinstance(args[0], str | Path):
        path = str(args[0])
        for root, seen in _watched:
            if path.startswith(root) or not os.path.isabs(path):
                seen.append(path)


sys.addaudithook(_audit)


@contextmanager
def file_accesses_under(root: Path) -> Iterator[list[str]]:
    seen: list[str] = []
    _watched.append((str(root.resolve()), seen))
    try:
        yield seen
    finally:
        _watched.pop()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make the file unwritable for this process: permission bits, or for root (who ignores them) immutable."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without `chattr +i`: cannot make the ledger read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
