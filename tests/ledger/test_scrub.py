"""The scrubber's shortcut (look for the patterns' first characters before running them) changes nothing."""

import re

from ledger.scrub import _HEADS, _SECRET_VALUE, _SHORTEST, REDACTED, Scrubber

SECRETS = [
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA (cut short",
    "sk-proj-0123456789abcdefghij",
    "hvs.CAESIJ0123456789abcdefghij",
    "hvb.AAAAAQJ0123456789abcdefghij",
    "hvr.0123456789abcdefghijklmn",
    "ghp_0123456789abcdefghijABCDEFGHIJ",
    "ghs_0123456789abcdefghijABCDEFGHIJ",
    "xoxb-1234567890-abcdefghij",
    "AKIAIOSFODNN7EXAMPLE",
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
    assert len(alternatives) == 8
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
    ]  # fmt: skip
    for text in minimal:
        assert len(text) >= _SHORTEST and Scrubber().text(text) == REDACTED, text
    assert _SECRET_VALUE.search("xoxb-" + "a" * 9) is None


def test_text_without_any_head_is_returned_as_it_was() -> None:
    text = "disk-1 on pve01 (task-runner) holds 12 GiB; the token bucket is ok" * 50
    assert Scrubber().text(text) == text
