"""Secret scrubbing for anything the ledger stores, every output and every LLM prompt: no field can carry a
secret value out."""

from collections.abc import Iterable
from typing import Any

from ledger.shapes import SHORTEST, Span, heads_in, secret_name, spans

__all__ = ["REDACTED", "Scrubber"]

REDACTED = "[REDACTED]"

_SHORTEST_KNOWN = 8
"""Known secrets shorter than this are not kept: they would redact ordinary words."""
_REMEMBERED = 64
"""Texts up to this long are remembered scrubbed (a call's action, its notes, its client's request id): every
call's ledger rows carry the same few of them."""
_REMEMBERED_COUNT = 1024


def _sub(value: str) -> tuple[str, int]:
    """`value` with every secret the rules find replaced, and how many were."""
    if len(value) < SHORTEST or not (starts := heads_in(value)) or not (found := spans(value, starts)):
        return value, 0
    return _replaced(value, found), len(found)


def _replaced(value: str, found: list[Span]) -> str:
    parts, done = [], 0
    for start, end in found:
        parts += [value[done:start], REDACTED]
        done = end
    return "".join(parts) + value[done:]


class Scrubber:
    """Replaces secret-looking values, and the exact values it was told about, with a marker.

    Known values cover what no pattern can guess (a key of an unusual shape); patterns cover what
    nobody told us about (a token pasted into an argument).
    """

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self._known: tuple[str, ...] = ()
        self._remembered: tuple[tuple[str, ...], dict[str, str]] = ((), {})
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
        if len(value) > _REMEMBERED:
            return self._text(value)[0]
        # Remembered under the known secrets they were scrubbed with: a secret learnt since starts afresh.
        known, remembered = self._remembered
        if known is not self._known:
            known, remembered = self._known, {}
            self._remembered = (known, remembered)
        scrubbed = remembered.get(value)
        if scrubbed is None:
            if len(remembered) >= _REMEMBERED_COUNT:  # texts a caller chose, one per call: start again
                remembered = {}
                self._remembered = (known, remembered)
            scrubbed = remembered[value] = self._text(value)[0]
        return scrubbed

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
                if secret_name(key) and v not in (None, ""):
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
        value, n = _sub(value)
        return value, count + n
