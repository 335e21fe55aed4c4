"""The scrubber's shortcut (look for the patterns' first characters before running them) changes nothing; it
counts what it replaces; and ordinary runbooks and inventories pass through it unchanged."""

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.scrub import _HEADS, _SECRET_VALUE, _SHORTEST, REDACTED, Scrubber
from server.settings import BUNDLED_DATA

SECRETS = [
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA (cut short",
    "sk-proj-0123456789abcdefghij",
    "hvs.CAESIJ0123456789abcdefghij",
    "hvb.AAAAAQJ0123456789abcdefghij",
    "hvr.0123456789abcdefghijklmn",
    "ghp_0123456789abcdefghijABCDEFGHIJ",
    "ghs_0123456789abcdefghijABCDEFGHIJ",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "xoxb-1234567890-abcdefghij",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl",
    "Bearer abcdefghijklmnop0123",
    "BEARER abcdefghijklmnop0123",
    "bearer\tabcdefghijklmnop0123",
]


def test_every_secret_shape_is_still_redacted_in_any_surrounding_text() -> None:
    scrubber = Scrubber()
    for secret in SECRETS:
        for text in (secret, f"before {secret} after", f'{{"key": "{secret}"}}'):
            scrubbed = scrubber.text(text)
            assert REDACTED in scrubbed and secret not in scrubbed, text
            assert scrubbed == _SECRET_VALUE.sub(REDACTED, text)


def test_each_alternative_of_the_patterns_starts_with_a_listed_head() -> None:
    # A pattern added without its head would be skipped by the shortcut: this catches it.
    heads = [h.replace(".", "\\.") for h in _HEADS] + ["(?i:bearer)"]
    alternatives = _top_level_alternatives(_SECRET_VALUE.pattern)
    assert len(alternatives) == 10
    for alternative in alternatives:
        literal = alternative.removeprefix(r"\b")
        assert any(literal.startswith(h) for h in heads) or _starts_with_class_of(literal), alternative


def _top_level_alternatives(pattern: str) -> list[str]:
    found, depth, start = [], 0, 0
    for i, char in enumerate(pattern):
        depth += {"(": 1, ")": -1}.get(char, 0) if pattern[i - 1 : i] != "\\" else 0
        if char == "|" and depth == 0:
            found.append(pattern[start:i])
            start = i + 1
    return [*found, pattern[start:]]


def _starts_with_class_of(pattern: str) -> bool:
    """`hv[sbr]\\.` is covered by the heads hvs. hvb. hvr. (and likewise gh…_ and xox…-)."""
    match = re.match(r"([a-z]+)\[([a-z]+)\](\\\.|_|-)", pattern)
    if match is None:
        return False
    stem, letters, tail = match.groups()
    tail = tail.replace("\\", "")
    return all(f"{stem}{letter}{tail}" in _HEADS for letter in letters)


def test_no_pattern_matches_text_shorter_than_the_shortcut_skips() -> None:
    # The shortest text each pattern matches; one character less and it would not.
    minimal = [
        "xoxb-" + "a" * 10, "sk-" + "a" * 16, "AKIA" + "A" * 16, "hvs." + "a" * 20, "ghp_" + "a" * 20,
        "eyJ" + "a" * 8 + "." + "a" * 8 + "." + "a" * 8, "bearer " + "a" * 12, "-----BEGIN PRIVATE KEY-----",
        "github_pat_" + "a" * 22, "ASIA" + "A" * 16,
    ]  # fmt: skip
    for text in minimal:
        assert len(text) >= _SHORTEST and Scrubber().text(text) == REDACTED, text
    assert _SECRET_VALUE.search("xoxb-" + "a" * 9) is None


def test_text_without_any_head_is_returned_as_it_was() -> None:
    text = "disk-1 on pve01 (task-runner) holds 12 GiB; the token bucket is ok" * 50
    assert Scrubber().text(text) == text


def test_redact_counts_each_secret_it_replaces_in_text_and_in_json() -> None:
    scrubber = Scrubber(["opaque-known-value-0001"])
    text = f"a {SECRETS[0]} b {SECRETS[2]} c opaque-known-value-0001 d opaque-known-value-0001"
    assert scrubber.redact(text) == (f"a {REDACTED} b {REDACTED} c {REDACTED} d {REDACTED}", 4)
    value = {"db": {"password": "hunter2-value", "host": "pve01"}, "notes": [SECRETS[9], "plain"], "n": 3}
    assert scrubber.redact(value) == ({"db": {"password": REDACTED, "host": "pve01"}, "notes": [REDACTED, "plain"],
                                       "n": 3}, 2)  # fmt: skip
    assert scrubber.redact("nothing to see here, token bucket ok") == ("nothing to see here, token bucket ok", 0)
    assert scrubber.value(value) == scrubber.redact(value)[0] and scrubber.text(text) == scrubber.redact(text)[0]


def test_the_bundled_runbooks_and_inventories_pass_through_unchanged() -> None:
    # What operators write (credentials "retrieve from Vault", tags such as "secrets") is not a secret.
    files = sorted((BUNDLED_DATA / "docs").iterdir()) + sorted((BUNDLED_DATA / "inventory").iterdir())
    assert len(files) >= 6
    for path in files:
        text = path.read_text(encoding="utf-8")
        content = json.loads(text) if path.suffix == ".json" else text
        assert Scrubber().redact(content) == (content, 0), path.name


# Pieces that make the hard cases likely: heads with and without a full secret after them, overlaps, word
# boundaries, case, a character whose lower case is longer (`İ`), and the PEM block with and without its end.
_PIECES = [*SECRETS, *_HEADS, "bearer ", "BeArEr\t", "x", "_", "-", ".", " ", "\n", "İ", "disk-1", "0123456789",
           "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOP", "-----END RSA PRIVATE KEY-----", "é"]  # fmt: skip


@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
@settings(max_examples=400, deadline=None)
def test_finding_the_heads_first_redacts_exactly_what_scanning_everywhere_would(text: str) -> None:
    scrubbed, count = Scrubber().redact(text)
    assert (scrubbed, count) == _SECRET_VALUE.subn(REDACTED, text)
