"""Store text cannot open or close a `<data>` element of the prompt: every tag a reader could take for one is defused.

The reader is the model, and it does not read byte by byte: it may pass over invisible characters (zero-width
spaces, soft hyphens, bidi controls, variation selectors, control characters), take full-width or styled letters
for plain ones, and take Unicode tag characters (U+E0020-E007E) for the ASCII they shadow. So `</da` U+200B `ta>`,
`<` U+202E `/data>` and `</data>` in full-width forms close the element as surely as `</data>` does, and a planted
`<data source="system">` opens one that claims a source the server never gave. Each is rewritten as `<\\/data` or
`<\\data`, which no reader takes for a tag.
"""

import re
import unicodedata

__all__ = ["defused"]

_OPENERS = re.compile("[<\ufe64\uff1c\U000e003c](?=[\\s/dD]|[^\x00-\x7f])")
"""The characters read as `<` (`<`, its small and full-width forms, the tag character that shadows it), where what
follows may begin a tag: `<a`, `<=` and `<<` cannot, so most of a document's `<` are passed at the regex's speed."""

_DEFAULT_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2065\u3164\ufe00-\ufe0f\uffa0\ufff0-\ufff8\U000e0000-\U000e0fff]"
)
"""Unicode's default-ignorable code points that are not format characters (Cf): rendered as nothing."""

_NAME = "/data"
_NAME_CHARACTERS = "-_.:"  # besides letters and digits: a tag named `data-x` or `data.x` is another element
_TAGS = range(0xE0020, 0xE007F)


def _skippable(ch: str) -> bool:
    """Whether a reader may pass over `ch`: a space, a control or format character, or one rendered as nothing."""
    if ch < "\x80":
        return ch.isspace() or not ch.isprintable()
    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") or _DEFAULT_IGNORABLE.match(ch) is not None


def _shadow(ch: str) -> str:
    """The ASCII character a tag character stands for, in lower case ("" for any other character)."""
    return chr(ord(ch) - 0xE0000).lower() if ord(ch) in _TAGS else ""


def _read(ch: str) -> str:
    """The character as a reader takes it: the capital, full-width and mathematical forms of `d` are all `d`."""
    return ch.lower() if ch < "\x80" else unicodedata.normalize("NFKC", ch).casefold()


def _ends_name(text: str, i: int) -> bool:
    """Whether the tag's name is over at `i`. Any character a reader may pass over ends it, since a reader may
    also take it for a space (`<data` U+200B `source=...`); a character that continues a name (`<database>`) does
    not."""
    if i == len(text) or _skippable(text[i]):
        return True
    first = _read(text[i])[:1]
    return not (first.isalnum() or first in _NAME_CHARACTERS)


def _tag_end(text: str, start: int) -> tuple[int | None, int]:
    """Where the `<data` or `</data` a reader may see from the opener at `start` ends (None: there is none), and
    the first character after `start` that a reader cannot skip.

    The states are how much of `/data` has been read; the slash may be left out. A skippable character keeps every
    state (it is passed over) and, if it is a tag character, may also be read as the ASCII it shadows.
    """
    states, first_kept, i = {0, 1}, len(text), start + 1
    while states and i < len(text):
        ch = text[i]
        if _skippable(ch):
            read = _shadow(ch)
            states |= {s + 1 for s in states if s < len(_NAME) and _NAME[s] == read}
        else:
            first_kept = min(first_kept, i)
            read = _read(ch)
            states = {s + 1 for s in states if s < len(_NAME) and _NAME[s] == read}
        i += 1
        if len(_NAME) in states:
            if _ends_name(text, i):
                return i, first_kept
            states.discard(len(_NAME))
    return None, first_kept


def defused(text: str) -> str:
    """`text` with every tag a reader may take for `<data` or `</data` rewritten; the rest is left as it is.

    Each opener is followed only as far as a tag could reach, and an opener that a failed tag passed over without
    reading anything is not tried again (what it could read, the failed tag read), so the cost stays linear.
    """
    parts, done = [], 0
    opener = _OPENERS.search(text)
    while opener is not None:
        start = opener.start()
        end, first_kept = _tag_end(text, start)
        if end is None:
            opener = _OPENERS.search(text, max(start + 1, first_kept))
            continue
        closing = any(_read(ch) == "/" or _shadow(ch) == "/" for ch in text[start:end])
        parts += [text[done:start], "<\\/data" if closing else "<\\data"]
        done = end
        opener = _OPENERS.search(text, end)
    return "".join(parts) + text[done:] if parts else text
