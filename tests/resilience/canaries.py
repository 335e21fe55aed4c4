"""Canary secrets carry the marker `c4nary` (any case) and no ordinary text does, so a search for the marker
finds a whole canary, a fragment of one (a PEM line) and a half-redacted one alike."""

__all__ = ["MARKER", "leaks"]

MARKER = b"c4nary"


def leaks(blob: bytes) -> list[str]:
    """Every place the marker appears, with some context, for a failure message that says where."""
    lowered, found, start = blob.lower(), [], 0
    while (at := lowered.find(MARKER, start)) >= 0:
        found.append(blob[max(0, at - 60) : at + 40].decode(errors="replace"))
        start = at + 1
    return found
