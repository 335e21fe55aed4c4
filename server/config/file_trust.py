"""Whether a file that configures trust could have been written by someone other than its user or root.

The config file, the policy, the ledger's key and Vault's CA decide where secrets go and what the agent may
do: whoever can change one of them can change that. The rule is OpenSSH's StrictModes, with the one
exception every Unix relies on for /tmp:

- the file, every folder its name is looked up in and every link on the way (followed hop by hop, so each
  link's folders too) must be owned by the user the server runs as, or by root (who owns /, /etc and the
  other system folders, and can change anything anyway);
- none of them may be writable by group or others, except a folder with the sticky bit (as /tmp): there
  others may add their own entries but cannot rename or delete ours, and ours are checked in turn.

What the file holds does not matter: a file that only names an endpoint sends the key there.
"""

import errno
import os
import pwd
import stat
from pathlib import Path

__all__ = ["UntrustedFile", "require_trusted", "untrusted"]

_ROOT = 0
_MAX_LINKS = 40  # as Linux's own limit on links followed in one lookup


class UntrustedFile(ValueError):
    """A file, or a folder above it, that someone other than its user or root could change; says the fix."""


def untrusted(path: Path) -> str | None:
    """Why `path` cannot be trusted, with the command that fixes it; None when it can (or does not exist).

    A missing file is left to the reader, which names the path; this only judges files that are there.
    """
    try:
        found = _lookups(path)
    except OSError:
        return None
    return next((problem for component, info in found if (problem := _problem(component, info))), None)


def require_trusted(path: Path, setting: str) -> None:
    """Raise `UntrustedFile` naming the setting, the file and the fix, unless `path` can be trusted."""
    if (problem := untrusted(path)) is not None:
        raise UntrustedFile(f"{setting}: {path} is refused: {problem}")


def _lookups(path: Path) -> list[tuple[Path, os.stat_result]]:
    """Every folder the kernel looks a name up in to open `path`, every link it follows, and the file.

    Whoever can write one of those folders can put another file, or another link, in the name's way; whoever
    owns a link could have pointed it anywhere.
    """
    found: dict[Path, os.stat_result] = {}
    pending = list(Path(os.getcwd(), path).parts)
    current, hops = Path(pending.pop(0)), 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = current.parent
            continue
        found.setdefault(current, os.stat(current))
        candidate = current / name
        info = os.lstat(candidate)
        if not stat.S_ISLNK(info.st_mode):
            current = candidate
            continue
        found[candidate] = info
        hops += 1
        if hops > _MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
        target = Path(os.readlink(candidate))
        if target.is_absolute():
            current = Path(target.anchor)
        pending[:0] = target.parts[1:] if target.is_absolute() else target.parts
    found.setdefault(current, os.stat(current))
    return list(found.items())


def _problem(component: Path, info: os.stat_result) -> str | None:
    me = os.geteuid()
    if info.st_uid not in (me, _ROOT):
        return (
            f"{component} belongs to {_user(info.st_uid)}, who could change it; the file and the folders above it "
            f"must belong to {_user(me)} or root: `chown {_user(me)} {component}`, or move the file"
        )
    if stat.S_ISLNK(info.st_mode):
        return None  # a link's own mode means nothing: only its owner, and its folder, can change it
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    shared_like_tmp = stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX
    if writable and not shared_like_tmp:
        return (
            f"{component} (mode {stat.S_IMODE(info.st_mode):04o}) can be written by group or others, who could "
            f"change it: `chmod go-w {component}`"
        )
    return None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
