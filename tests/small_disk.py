"""A disk the tests can fill: a small tmpfs mounted for one test, and a file that takes its last free byte.

Running a real database out of disk needs a filesystem of its own, so the rest of the machine never notices: a
tmpfs of a few megabytes, mounted on a fresh folder (which needs root; the tests skip with a message where mount
is refused) and unmounted on leaving. `full_disk` then fills what remains with zeros, down to the last page, and
frees it on leaving, so a test can show a write refused while the disk is full and accepted once it is not.
"""

import contextlib
import errno
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["free_bytes", "full_disk", "small_tmpfs"]

_MOUNT_TIMEOUT_S = 30
_CHUNKS = (1 << 20, 4096)
"""Megabytes first, then the last pages (tmpfs allocates by the 4 KiB page)."""


@contextlib.contextmanager
def small_tmpfs(size_mb: int) -> Iterator[Path]:
    """A fresh, empty tmpfs of `size_mb` MiB (owned by root, mode 0755), unmounted and removed on leaving.
    Whatever runs on it must be stopped before the block ends, or the unmount is deferred (lazy)."""
    mount = Path(tempfile.mkdtemp(prefix="planner-disk-"))
    try:
        done = _mount_command(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(mount)])
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}): the out-of-disk tests need root")
        try:
            yield mount
        finally:
            if _mount_command(["umount", str(mount)]).returncode != 0:
                _mount_command(["umount", "--lazy", str(mount)])
    finally:
        with contextlib.suppress(OSError):
            mount.rmdir()


@contextlib.contextmanager
def full_disk(folder: Path) -> Iterator[Path]:
    """The filesystem holding `folder` filled to its last free page by one file of zeros written there (its
    path is yielded); the file is removed on leaving, which gives the space back."""
    path = folder / f"disk-filler-{secrets.token_hex(4)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            for size in _CHUNKS:
                _write_until_full(fd, bytes(size))
        finally:
            os.close(fd)
        yield path
    finally:
        path.unlink(missing_ok=True)


def free_bytes(folder: Path) -> int:
    """What an unprivileged writer may still allocate on the filesystem holding `folder`."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def _write_until_full(fd: int, block: bytes) -> None:
    try:
        while True:
            os.write(fd, block)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise


def _mount_command(command: list[str]) -> "subprocess.CompletedProcess[str]":
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=_MOUNT_TIMEOUT_S)
    except FileNotFoundError as error:
        return subprocess.CompletedProcess(command, 127, "", str(error))
