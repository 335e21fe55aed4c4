"""stdin and stdout claimed as the SDK claims them, and read and written on the event loop when they are a pipe or a
socket, as a host's are.

The SDK writes each reply through an `anyio.AsyncFile`: two worker-thread trips a message (write, then flush),
about a tenth of a call's CPU; and stdin was read by a thread that woke the loop for each line. On a pipe or a
socket, a reply is written here with `os.write` straight from the loop, and a line read with `os.read`; only when
the host reads slower than the server writes (the pipe is full), or has sent nothing yet, does the loop wait on the
descriptor, and a cancellation (a signal) ends that wait at once. One writer (the SDK's stdout task) writes whole
lines, in order, each in the pipe before `write` returns: no reply sits in a buffer. A host that goes away fails
the next write with BrokenPipeError, as it did through the AsyncFile.

fd 0 and fd 1 are claimed with the SDK's own `_claim_fd`: the wire is served from private duplicates while fd 0 reads
the null device and fd 1 writes to stderr, so a stray print (or a child's read) never touches the wire, and a
second `stdio_server` in the process is refused. The duplicates are made non-blocking, and put back as they were
when serving ends; a terminal, a file, or a wire that stderr shares, keeps the blocking, threaded way (a terminal's
flags are its shell's too).
"""

import codecs
import io
import os
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import Any, BinaryIO, Literal, Self, TextIO

import anyio
from mcp.server.stdio import _claim_fd, _open_stdin_diversion, _open_stdout_diversion, _UnownedTextWrapper

from server.transports.stdio.lifetime import StdinLines

__all__ = ["LoopLines", "LoopWriter", "claimed_stdio"]

_READ_SIZE = 1 << 16
"""As much as a pipe holds: a burst of pipelined requests is read in one call."""


class LoopWriter:
    """What `stdio_server(stdout=...)` writes each reply line to: a non-blocking pipe or socket, on the loop."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        while data:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:  # the host has not read the pipe's worth before: wait until it does
                await anyio.wait_writable(self._fd)
            else:
                data = data[written:]

    async def flush(self) -> None:
        """Nothing is buffered: `write` returns once the whole line is in the pipe."""


class LoopLines:
    """The lines of a non-blocking pipe or socket, read on the loop, as `stdio_server(stdin=...)` iterates them.

    Decoded as the SDK decodes stdin (UTF-8, an undecodable byte replaced, newlines universal); the lines of one
    read are handed out before the next read, so a slow server still holds the host back.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._decoder = io.IncrementalNewlineDecoder(utf8, translate=True)
        self._lines: deque[str] = deque()
        self._partial: list[str] = []
        self._ended = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        while not self._lines:
            if self._ended:
                raise StopAsyncIteration
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                await anyio.wait_readable(self._fd)
            else:
                self._take(chunk)
        return self._lines.popleft()

    def _take(self, chunk: bytes) -> None:
        self._ended = not chunk
        *whole, rest = self._decoder.decode(chunk, final=self._ended).split("\n")
        if whole:
            whole[0] = "".join((*self._partial, whole[0]))
            self._partial.clear()
            self._lines.extend(line + "\n" for line in whole)
        if rest:
            self._partial.append(rest)
        if self._ended and self._partial:  # a last line without its newline is still a line, as readline has it
            self._lines.append("".join(self._partial))


@contextmanager
def claimed_stdio() -> Iterator[tuple[Any, Any]]:
    """The (stdin, stdout) to pass to `stdio_server`, claimed for as long as the block runs."""
    with ExitStack() as stack:
        stdin_wire = stack.enter_context(_claimed(0, sys.stdin, "rb", _open_stdin_diversion))
        stdout_wire = stack.enter_context(_claimed(1, sys.stdout, "wb", _open_stdout_diversion))
        stdin_fd = stack.enter_context(_nonblocking(_loop_owned(stdin_wire)))
        stdout_fd = stack.enter_context(_nonblocking(_loop_owned(stdout_wire)))
        stdin = LoopLines(stdin_fd) if stdin_fd is not None else _thread_read(stdin_wire)
        stdout = (
            LoopWriter(stdout_fd)
            if stdout_fd is not None
            else anyio.wrap_file(_UnownedTextWrapper(stdout_wire, encoding="utf-8"))
        )
        yield stdin, stdout


def _thread_read(wire: BinaryIO) -> StdinLines:
    """A daemon thread's lines: of the private wire, or of its own duplicate of fd 0 when that is served in place."""
    with suppress(OSError, ValueError, io.UnsupportedOperation):
        if wire.fileno() > 2:
            return StdinLines(wire)
    return StdinLines()


@contextmanager
def _claimed(fd: int, stream: TextIO, mode: Literal["rb", "wb"], diversion: Callable[[], int]) -> Iterator[BinaryIO]:
    wire, release = _claim_fd(fd, stream, mode, diversion)
    try:
        yield wire
    finally:
        if release is not None:
            release()


def _loop_owned(wire: BinaryIO) -> int | None:
    """The wire's descriptor when the loop may own it: a host's pipe or socket, on the claim's private duplicate."""
    if sys.platform == "win32":  # no waiting on a pipe's descriptor there
        return None
    try:
        fd = wire.fileno()
        kind = os.fstat(fd)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    if fd <= 2 or not (stat.S_ISFIFO(kind.st_mode) or stat.S_ISSOCK(kind.st_mode)) or _is_stderr(kind):
        return None  # served in place (the claim could not divert), or not a host's pipe: as the SDK serves it
    return fd


@contextmanager
def _nonblocking(fd: int | None) -> Iterator[int | None]:
    """`fd` made non-blocking until the block ends, then put back as it was."""
    if fd is None:
        yield None
        return
    blocking = os.get_blocking(fd)
    os.set_blocking(fd, False)
    try:
        yield fd
    finally:
        with suppress(OSError):
            os.set_blocking(fd, blocking)


def _is_stderr(kind: os.stat_result) -> bool:
    """Whether stderr is this same pipe (`2>&1`): its writes must not start failing when the pipe is full."""
    try:
        err = os.fstat(2)
    except OSError:
        return False
    return (err.st_dev, err.st_ino) == (kind.st_dev, kind.st_ino)
