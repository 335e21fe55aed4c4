"""Secret scrubbing for anything the ledger stores, every output and every LLM prompt: no field can carry a
secret value out."""

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "Scrubber"]

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(r"pass(word|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential|authorization", re.I)

_SECRET_VALUE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)"
    r"|\bsk-[A-Za-z0-9_-]{16,}"
    r"|\bhv[sbr]\.[A-Za-z0-9_-]{20,}"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{22,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bASIA[0-9A-Z]{16}\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}",
    re.S,
)

# Every alternative of _SECRET_VALUE begins with one of these (the last, `bearer`, in any case). So a match can
# start only where one of them does: `str.find` locates those places at ~1 ns a character a head, and the
# patterns are tried there alone. Scanning with the patterns themselves costs ~250 ns a character, and runbooks
# are full of heads (`sk-` in `disk-1`), so a shortcut that only checked for their presence rarely applied.
_HEADS = (
    "-----BEGIN", "sk-", "hvs.", "hvb.", "hvr.", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
    "xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "github_pat_", "AKIA", "ASIA", "eyJ",
)  # fmt: skip


# No pattern matches fewer characters than this (`xoxb-` and ten more is the shortest).
_SHORTEST = 15
_SHORTEST_KNOWN = 8
"""Known secrets shorter than this are not kept: they would redact ordinary words."""


_BEARER = re.compile("bearer", re.I)


def _starts(value: str) -> list[int]:
    """Where a match of _SECRET_VALUE may start, in order: where a head starts."""
    find = value.find
    present = [head for head in _HEADS if find(head) >= 0]
    lowered = value.lower()
    if not present and "bearer" not in lowered:  # most text: one find per head, and done
        return []
    found: set[int] = set()
    for head in present:
        at = find(head)
        while at >= 0:
            found.add(at)
            at = find(head, at + 1)
    if len(lowered) == len(value):
        at = lowered.find("bearer")
        while at >= 0:
            found.add(at)
            at = lowered.find("bearer", at + 1)
    else:  # a character whose lower case is longer (`İ`) shifts every place after it
        found.update(m.start() for m in _BEARER.finditer(value))
    return sorted(found)


def _sub(value: str) -> tuple[str, int]:
    """`_SECRET_VALUE.subn(REDACTED, value)`, trying the patterns only where a head starts."""
    if len(value) < _SHORTEST:
        return value, 0
    parts, done, count = [], 0, 0
    for start in _starts(value):
        if start < done:  # inside the previous match, as a left-to-right scan would skip it
            continue
        if (match := _SECRET_VALUE.match(value, start)) is not None:
            parts += [value[done:start], REDACTED]
            done, count = match.end(), count + 1
    return ("".join(parts) + value[done:], count) if count else (value, 0)


class Scrubber:
    """Replaces secret-looking values, and the exact values it was told about, with a marker.

    Known values cover what no pattern can guess (a key of an unusual shape); patterns cover what
    nobody told us about (a token pasted into an argument).
    """

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self._known: tuple[str, ...] = ()
        self.add(*known_secrets)

    def add(self, *secrets: str) -> None:
        """Learn secrets found at run time (a token from a login, a key read from Vault).

        The tuple is replaced whole, so threads scrubbing at the same moment see the old or the new set.
        """
        # Short values would redact ordinary words; a real credential is never this short.
        known = {s for s in (*self._known, *secrets) if len(s) >= _SHORTEST_KNOWN}
        self._known = tuple(sorted(known, key=len, reverse=True))

    @property
    def known(self) -> tuple[str, ...]:
        """The exact values scrubbed today: a new tuple whenever one is learnt, so it can key what was scrubbed."""
        return self._known

    def text(self, value: str) -> str:
        return self._text(value)[0]

    def value(self, value: Any) -> Any:
        """Scrub a JSON-like value: secret-named keys lose their values, strings lose secret-looking parts."""
        return self.redact(value)[0]

    def redact(self, value: Any) -> tuple[Any, int]:
        """`value` scrubbed as `value()` does, and how many secrets were replaced: outputs say so to their reader."""
        count = [0]
        return self._walk(value, count), count[0]

    def _walk(self, value: Any, count: list[int]) -> Any:
        # One call per node and a shared counter: an inventory is hundreds of short strings.
        if isinstance(value, str):
            text, n = self._text(value)
            count[0] += n
            return text
        if isinstance(value, dict):
            found = {}
            for k, v in value.items():
                key = str(k)
                # Keys are the caller's text too: a secret can arrive as an argument's name.
                if _SECRET_KEY.search(key) and v not in (None, ""):
                    v = REDACTED
                    count[0] += 1
                else:
                    v = self._walk(v, count)
                found[self._walk(key, count)] = v
            return found
        if isinstance(value, list | tuple):
            return [self._walk(v, count) for v in value]
        return value

    def _text(self, value: str) -> tuple[str, int]:
        count = 0
        if len(value) >= _SHORTEST_KNOWN:
            for secret in self._known:
                if secret in value:
                    count += value.count(secret)
                    value = value.replace(secret, REDACTED)
        if len(value) < _SHORTEST:
            return value, count
        value, n = _sub(value)
        return value, count + n
