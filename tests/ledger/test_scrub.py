"""Every shape of secret a runbook holds is redacted wherever it sits in a text; the scrubber counts what it
replaces; ordinary runbooks and inventories pass through it unchanged; and its shortcut (look for the rules'
heads before trying them) changes nothing."""

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger.scrub import REDACTED, Scrubber
from ledger.shapes import _NAME_HEADS, _RULES, SHORTEST, everywhere, heads_in, spans
from server.config.settings import BUNDLED_DATA

# (text, the secret in it): the text as a runbook would hold it, the part that must not come out.
SHAPES = [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNz"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA (cut short", "MIIEowIBAAKCAQEA"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGXc4nary0PGPbody\n=Zx9w\n-----END PGP PRIVATE KEY BLOCK-----",
     "lQOYBGXc4nary0PGPbody"),
    ("sk-proj-0123456789abcdefghij", "sk-proj-0123456789abcdefghij"),
    ("sk_live_51Hc4naryStripeKey0123456789", "sk_live_51Hc4naryStripeKey0123456789"),
    ("rk_live_51Hc4naryRestrictedKey012345", "rk_live_51Hc4naryRestrictedKey012345"),
    ("hvs.CAESIJ0123456789abcdefghij", "hvs.CAESIJ0123456789abcdefghij"),
    ("hvb.AAAAAQJ0123456789abcdefghij", "hvb.AAAAAQJ0123456789abcdefghij"),
    ("hvr.0123456789abcdefghijklmn", "hvr.0123456789abcdefghijklmn"),
    ("VAULT_TOKEN s.Ab3dEf6hIj9kLmN0pQrStUvW", "s.Ab3dEf6hIj9kLmN0pQrStUvW"),  # Vault before 1.10
    ("ghp_0123456789abcdefghijABCDEFGHIJ", "ghp_0123456789abcdefghijABCDEFGHIJ"),
    ("ghs_0123456789abcdefghijABCDEFGHIJ", "ghs_0123456789abcdefghijABCDEFGHIJ"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_11ABCDEFG0123456789_abcdefghij"),
    ("glpat-Zx9c4naryGitLab01234", "glpat-Zx9c4naryGitLab01234"),
    ("glrt-t1_c4naryRunnerToken0123", "glrt-t1_c4naryRunnerToken0123"),
    ("xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("https://hooks.slack.com/services/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", "c4naryWebhookSecret"),
    ("npm_c4naryNPMtoken0123456789abcdefghijkl", "npm_c4naryNPMtoken0123456789abcdefghijkl"),
    ("AIzaSyC4naryGoogleKey0123456789abcdefgh", "AIzaSyC4naryGoogleKey0123456789abcdefgh"),
    ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("ASIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("AWS Secret Access Key [None]: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ('"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl", "c2lnbmF0dXJlLXZhbHVl"),
    ("Bearer abcdefghijklmnop0123", "abcdefghijklmnop0123"),
    ("BEARER abcdefghijklmnop0123", "abcdefghijklmnop0123"),
    ("bearer\tabcdefghijklmnop0123", "abcdefghijklmnop0123"),
    ("Authorization: Basic YWRtaW46aHVudGVyMg==", "YWRtaW46aHVudGVyMg=="),
    ("curl -H 'Authorization: Basic YWRtaW46aHVudGVy' https://pve01:8006", "YWRtaW46aHVudGVy"),
    ("postgres://app:S3cr3t-pass@db-01.pve.lan:5432/app", "S3cr3t-pass"),
    ("https://deploy:p%40ss:w0rd@git.example.com/repo.git", "p%40ss:w0rd"),
    ("password: hunter2", "hunter2"),
    ("Password: changeme", "changeme"),
    ("export DB_PASSWORD=correcthorse", "correcthorse"),
    ("PGPASSWORD='battery staple' psql -h db-01", "battery staple"),
    ("mysql_root_pwd = Tr0ub4dor&3", "Tr0ub4dor"),
    ("spring.datasource.password=s3cret", "s3cret"),
    ("ipmitool -U admin -P x --password=hunter2", "hunter2"),
    ('{"client_secret": "c4nary-client-secret"}', "c4nary-client-secret"),
    ("token: 7f3e9a1c5b2d", "7f3e9a1c5b2d"),
    ("//registry.npmjs.org/:_authToken=00000000-c4na-ry00-0000-000000000000", "00000000-c4na-ry00"),
    ("SENTRY_DSN=https://c4narykey@o0.ingest.sentry.io/1", "c4narykey"),
    ("api_key: `c4nary-0123456789`", "c4nary-0123456789"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "secret"), SHAPES, ids=[s[:24] for _, s in SHAPES])
def test_every_shape_of_secret_is_redacted_in_any_surrounding_text(text: str, secret: str) -> None:
    scrubber = Scrubber()
    for surrounded in (text, f"1. Log in as admin, then {text}\n2. Check", f"Run\n\n    {text}\n\nthen check"):
        scrubbed, count = scrubber.redact(surrounded)
        assert secret not in scrubbed and REDACTED in scrubbed and count == 1, scrubbed
        assert scrubber.redact(scrubbed) == (scrubbed, 0)  # scrubbing again finds nothing more


def test_a_url_keeps_its_user_and_host_and_loses_its_password() -> None:
    text = "Restore into postgres://app:S3cr3t-pass@db-01.pve.lan:5432/app, or https://user@host/ (no password)"
    assert Scrubber().text(text) == (
        f"Restore into postgres://app:{REDACTED}@db-01.pve.lan:5432/app, or https://user@host/ (no password)"
    )


def test_a_named_value_keeps_its_name() -> None:
    text = 'export DB_PASSWORD=x1 && curl -H "Authorization: Basic YWRtaW46aHVudGVy" -d \'{"token": "t0k"}\''
    assert Scrubber().text(text) == (
        f'export DB_PASSWORD={REDACTED} && curl -H "Authorization: Basic {REDACTED}" -d \'{{"token": "{REDACTED}"}}\''
    )


def test_redact_counts_each_secret_it_replaces_in_text_and_in_json() -> None:
    scrubber = Scrubber(["opaque-known-value-0001"])
    text = f"a {SHAPES[0][0]} b {SHAPES[3][0]} c opaque-known-value-0001 d opaque-known-value-0001"
    assert scrubber.redact(text) == (f"a {REDACTED} b {REDACTED} c {REDACTED} d {REDACTED}", 4)
    value = {"db": {"password": "hunter2-value", "host": "pve01"}, "notes": [SHAPES[10][0], "plain"], "n": 3}
    assert scrubber.redact(value) == ({"db": {"password": REDACTED, "host": "pve01"}, "notes": [REDACTED, "plain"],
                                       "n": 3}, 2)  # fmt: skip
    assert scrubber.redact("nothing to see here, token bucket ok") == ("nothing to see here, token bucket ok", 0)
    assert scrubber.value(value) == scrubber.redact(value)[0] and scrubber.text(text) == scrubber.redact(text)[0]


def test_the_bundled_runbooks_and_inventories_pass_through_unchanged() -> None:
    # What operators write (credentials "retrieve from Vault", tags such as "secrets") is not a secret: zero
    # redactions over every shipped file.
    files = sorted((BUNDLED_DATA / "docs").iterdir()) + sorted((BUNDLED_DATA / "inventory").iterdir())
    assert len(files) >= 6
    for path in files:
        text = path.read_text(encoding="utf-8")
        content = json.loads(text) if path.suffix == ".json" else text
        assert Scrubber().redact(content) == (content, 0), path.name
        assert Scrubber().redact(text) == (text, 0), path.name  # and as the text a prompt quotes


# -- the shortcut ----------------------------------------------------------------------------------------------


def test_text_without_any_head_is_returned_as_it_was() -> None:
    text = "disk-1 on pve01 (task-runner) holds 12 GiB; the token bucket is ok" * 50
    assert Scrubber().text(text) == text


@pytest.mark.parametrize("rule", range(len(_RULES)))
def test_each_rule_matches_no_text_shorter_than_it_says(rule: int) -> None:
    # The shortest text each rule matches; the scrubber looks for a rule's heads only in text this long.
    minimal = {
        "-----BEGIN": "-----BEGIN PRIVATE KEY-----", "sk-": "sk-" + "a" * 16, "sk_live_": "sk_live_" + "a" * 16,
        "hv": "hvs." + "a" * 20, "s.": "s." + "a" * 24, "ghp_": "ghp_" + "a" * 20,
        "github_pat_": "github_pat_" + "a" * 22, "glpat-": "gldt-" + "a" * 20, "xox": "xoxb-" + "a" * 10,
        "hooks.slack.com/": "hooks.slack.com/services/" + "a" * 20, "npm_": "npm_" + "a" * 36,
        "AIza": "AIza" + "a" * 35, "AKIA": "AKIA" + "A" * 16, "eyJ": "eyJ" + ".".join(["a" * 8] * 3),
        "://": "://:x@", "bearer": "bearer " + "a" * 12, "aws": "awskey=" + "a" * 40,
    }  # fmt: skip
    text = minimal[_RULES[rule].heads[0]]
    assert len(text) == _RULES[rule].shortest >= SHORTEST
    assert _RULES[rule].at(text, 0) is not None and _RULES[rule].at(text[:-1], 0) is None, text
    assert spans(text, heads_in(text)) != []


def test_no_name_matches_text_shorter_than_the_shortcut_skips() -> None:
    assert Scrubber().redact("pwd=x") == (f"pwd={REDACTED}", 1) and len("pwd=x") == SHORTEST


# Pieces that make the hard cases likely: heads with and without a full secret after them, overlaps, word
# boundaries, case, a character whose lower case is longer (`İ`), the PEM block with and without its end, names
# and separators in every form, quotes, placeholders, and URLs with and without a password.
_PIECES = [
    *(text for text, _ in SHAPES), *(h for rule in _RULES for h in rule.heads), *_NAME_HEADS, "bearer ", "BeArEr\t",
    "x", "_", "-", ".", " ", "\n", "İ", "disk-1", "0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOP",
    "-----END RSA PRIVATE KEY-----", "é", "password", "PASSWORD", "pwd", "Secret", "TOKEN", "credentials", "dsn",
    "Api", "Key", "_id", "monkey", "Authorization", "auth", "X-",
    ": ", "=", ":=", "\"", "'", "`", "**", "Basic ", "user:", "@", "host/", "s.", "AWS Secret Access Key", "[None]",
    REDACTED, "${X}", "<pw>", "$DB_PW", "none", "hunter2", "see Vault", ";", ",", "&",
]  # fmt: skip


@given(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
@example("İ awsecret=xyz1")  # heads overlapping (`aws`, `secret`) where the lower case is longer
@settings(max_examples=600, deadline=None)
def test_finding_the_heads_first_redacts_exactly_what_trying_every_rule_everywhere_would(text: str) -> None:
    assert spans(text, heads_in(text)) == spans(text, everywhere(text))


def test_a_short_text_scrubbed_before_a_secret_was_learnt_is_scrubbed_afresh_after() -> None:
    # Short texts (an action, a client's request id) are remembered scrubbed: learning a secret must not leave a
    # remembered copy that still holds it.
    scrubber = Scrubber()
    text = "id c4naryKnownSecret0"
    assert scrubber.text(text) == text
    scrubber.add("c4naryKnownSecret0")
    assert scrubber.text(text) == f"id {REDACTED}"


def test_remembering_short_texts_changes_no_answer_however_many_a_caller_sends() -> None:
    # Past the count it keeps, the scrubber starts again; every answer stays the one a fresh scrubber gives.
    scrubber, fresh = Scrubber(["c4naryKnownSecret0"]), Scrubber(["c4naryKnownSecret0"])
    texts = [f"{i} token=abcdefgh{i}" if i % 3 else f"{i} c4naryKnownSecret0" for i in range(3000)]
    for text in texts + texts[::-1]:
        assert scrubber.text(text) == fresh._text(text)[0]
