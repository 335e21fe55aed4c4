"""A value is a secret when its name says so, in JSON and in text; names and prose that only look alike keep
their values. Both sides of each decision are here, so a rule grown to catch more cannot quietly start to
mangle ordinary runbooks or the arguments the ledger records."""

import pytest

from ledger.scrub import REDACTED, Scrubber

SECRET_KEYS = [
    "password", "Password", "PASSWORD", "passwd", "passphrase", "pwd", "pass", "db_pass", "db_password",
    "DB_PASSWORD", "PGPASSWORD", "dbPassword", "password_hash", "secret", "client_secret", "clientsecret",
    "secret_id", "token", "github_token", "authToken", "authtoken", "access_token", "credential", "credentials",
    "Authorization", "authorization", "auth", "basic_auth", "http-auth", "key", "api_key", "apiKey", "APIKey",
    "X-Api-Key", "apikey", "access_key", "AccessKey", "aws_secret_access_key", "SecretAccessKey", "private_key",
    "ssh_key", "dsn", "sentry_dsn", "DATABASE_DSN",
]  # fmt: skip

ORDINARY_KEYS = [
    "name", "docs", "description", "context", "constraints", "limit", "action", "decision", "notes", "key_id",
    "access_key_id", "keys", "monkey", "keyboard", "hotkeys", "author", "authority", "authors", "auth_method",
    "oauth", "oauth_issuer", "tokens", "max_tokens", "total_tokens", "prompt_tokens", "bypass", "passive",
    "compass", "passthrough", "pass_rate", "passwordless", "dsn_name", "turkey", "keep_daily", "public",
]  # fmt: skip


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_a_json_key_named_like_a_secret_loses_its_value(key: str) -> None:
    assert Scrubber().redact({key: "opaque", "host": "pve01"}) == ({key: REDACTED, "host": "pve01"}, 1)


@pytest.mark.parametrize("key", ORDINARY_KEYS)
def test_a_json_key_that_only_contains_such_a_word_keeps_its_value(key: str) -> None:
    value = {key: ["web-01", "opaque"], "nested": {key: "plain value"}}
    assert Scrubber().redact(value) == (value, 0)


def test_the_arguments_the_ledger_records_keep_their_values() -> None:
    arguments = {
        "name": "backup-restore", "docs": ["vm-provisioning", "node-maintenance"], "limit": 20,
        "description": "Add a VM with 4 cores and 8 GB on pve02", "constraints": ["no downtime for prod"],
        "context": {"ticket": "CHG-1234", "owner": "platform", "keys_rotated": True},
    }  # fmt: skip
    assert Scrubber().redact(arguments) == (arguments, 0)


# Text: a name, then `=`, `:` or `:=`, then the value. What is replaced is the value; the name stays.
REDACTED_IN_TEXT = [
    ("password: hunter2", f"password: {REDACTED}"),
    ("password=hunter", f"password={REDACTED}"),  # written tight, a plain word is a value
    ("Password: changeme\n", f"Password: {REDACTED}\n"),  # a plain word alone on its line after a password's name
    ("db_pass: Tr0ub4dor", f"db_pass: {REDACTED}"),
    ('  password: "correct horse"', f'  password: "{REDACTED}"'),
    ("token = 7f3e9a1c5b2d9e", f"token = {REDACTED}"),
    ("**Password:** P@ssw0rd!", f"**Password:** {REDACTED}"),
    ("api_key: `k-0123456789`", f"api_key: `{REDACTED}`"),
    ("(password: hunter2)", f"(password: {REDACTED}"),
    ("Password: hunter2, then log in", f"Password: {REDACTED}, then log in"),
    ("Server=db-01;User Id=sa;Password=Sa-p4ss;", f"Server=db-01;User Id=sa;Password={REDACTED};"),
    ("https://pve01/api?user=root&password=hunter2&realm=pam", f"https://pve01/api?user=root&password={REDACTED}&realm=pam"),
    ('{"auth": "dXNlcjpwYXNz", "key": "k1"}', f'{{"auth": "{REDACTED}", "key": "{REDACTED}"}}'),
    ("Authorization: Token abcdef0123456789", f"Authorization: Token {REDACTED}"),
    ("dsn: postgres://app:pw1@db-01/app", f"dsn: {REDACTED}"),
]  # fmt: skip

KEPT_IN_TEXT = [
    "The password policy requires rotation every 90 days.",
    "Password: see Vault",
    "- Out-of-band (IPMI) access; credentials: retrieve from Vault (`secret/platform/ipmi`).",
    "password_policy: strict",  # a plain word: only a password's own name makes it one
    "Token: rotation\n",
    "### Auth: LDAP\n",
    "auth_method: approle",
    "key_id: 1234abcd",
    "keys: web-01, web-02",
    "monkey: banana12",
    "password: <from Vault>",
    "password: ${DB_PASSWORD}",
    "password=$DB_PASSWORD",
    "password: {{ vault_db_password }}",
    "password: ********",
    "token: none",
    "password: null",
    'password: ""',
    '"token": 12',  # a number in JSON: a secret there is a quoted string
    '"max_tokens": 2000, "passwordless": true',
    "SSH keys come from Vault (`secret/platform/ssh/ci-deploy`); never paste keys into the ticket.",
    "proxmox-backup-client snapshot list vm/103 --repository backup@pbs@10.20.0.20:store1",
    "https://pve01:8006/api2/json and ssh://root@pve01 (no password in either)",
    "Bearer tokens expire after an hour.",
    "Set PLANNER_MCP_HTTP_TOKEN (e.g. `openssl rand -hex 32`).",
    "the token bucket is ok; the key: ok",
]


@pytest.mark.parametrize(("text", "scrubbed"), REDACTED_IN_TEXT)
def test_a_value_after_a_secrets_name_in_text_is_replaced_and_the_name_kept(text: str, scrubbed: str) -> None:
    assert Scrubber().redact(text) == (scrubbed, scrubbed.count(REDACTED))


@pytest.mark.parametrize("text", KEPT_IN_TEXT)
def test_prose_placeholders_and_lookalikes_are_left_as_written(text: str) -> None:
    assert Scrubber().redact(text) == (text, 0)
