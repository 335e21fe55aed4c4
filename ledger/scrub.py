"""Secret scrubbing for anything the ledger stores: no field can carry a secret value into the file."""

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
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{12,}",
    re.S,
)

# Every alternative of _SECRET_VALUE begins with one of these (the last, `bearer`, in any case). Finding none
# of them, which Python does at memory speed, proves the patterns cannot match: scanning with the patterns
# themselves costs ~140 ns a character, which made scrubbing an LLM prompt cost more than building it.
_HEADS = (
    "-----BEGIN", "sk-", "hvs.", "hvb.", "hvr.", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
    "xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "AKIA", "eyJ",
)  # fmt: skip


# No pattern matches fewer characters than this (`xoxb-` and ten more is the shortest).
_SHORTEST = 15


def _may_match(value: str) -> bool:
    return len(value) >= _SHORTEST and (any(head in value for head in _HEADS) or "bearer" in value.lower())


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
        known = {s for s in (*self._known, *secrets) if len(s) >= 8}
        self._known = tuple(sorted(known, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._known:
            value = value.replace(secret, REDACTED)
        return _SECRET_VALUE.sub(REDACTED, value) if _may_match(value) else value

    def value(self, value: Any) -> Any:
        """Scrub a JSON-like value: secret-named keys lose their values, strings lose secret-looking parts."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            # Keys are the caller's text too: a secret can arrive as an argument's name.
            return {
                self.text(str(k)): REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
