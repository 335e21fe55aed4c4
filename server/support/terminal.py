"""What the server writes for a person to read, and for a program to parse, on a terminal.

Much of what the command line and the logs show was written by someone else: a remote client's tool name, a row
an intruder crafted in the ledger, an upstream's error text. A terminal obeys the control sequences such text can
carry (set the window title, clear the screen, write the clipboard with OSC 52), a line break in a value forges a
line of its own, and bidirectional or invisible characters make text show as something it is not (a tool name
"ssh" with a zero-width space in it is not the refused "ssh"). So no such character reaches a terminal raw:

- for a person (`escape`, `say`), each is shown as an escape (`\\n`, `\\x1b`, `\\u202e`), so a line is one line
  and shows what it holds;
- in JSON (`escape_json`, `say_json`), each is a `\\uXXXX` escape, so the text still decodes to the very values
  written. JSON encoders escape C0 controls already; the others can only occur inside strings, where the
  escape is theirs, so structural whitespace is left alone.
"""

import re
import sys
from typing import TextIO

__all__ = ["escape", "escape_json", "say", "say_json"]

# C0 and C1 controls and DEL; the bidirectional controls (embeddings, overrides, isolates, marks); the Unicode line
# and paragraph separators; and the invisible format characters (zero-width space and joiners, word joiner and
# invisible operators, byte order mark) that make two different strings look the same.
_BEYOND_C0 = "\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_UNSAFE_CHARS = re.compile(f"[\x00-\x1f{_BEYOND_C0}]")
# In JSON, the C0 controls are left to the encoder (every one escapes them; JSON's own whitespace is among them).
_UNSAFE_IN_JSON = re.compile(f"[{_BEYOND_C0}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    c = match.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def _json_escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape(text: str) -> str:
    """`text` as one line a terminal shows as written: every unsafe character as a visible escape."""
    return _UNSAFE_CHARS.sub(_escaped, text)


def escape_json(text: str) -> str:
    """JSON text (from any encoder, indented or not) with every unsafe character as a `\\uXXXX` escape."""
    return _UNSAFE_IN_JSON.sub(_json_escaped, text)


def say(*lines: str, file: TextIO | None = None) -> None:
    """Write each of `lines` for a person (stdout unless `file`): one line each, whatever a value in it holds."""
    (file or sys.stdout).write("".join(escape(line) + "\n" for line in lines))


def say_json(text: str, *, file: TextIO | None = None) -> None:
    """Write JSON text for a program (stdout unless `file`), then a newline."""
    (file or sys.stdout).write(escape_json(text) + "\n")
