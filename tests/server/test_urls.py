"""A URL from the settings loses its user and password, and only those, when it is shown."""

import pytest

from server.config.urls import shown, split


@pytest.mark.parametrize(
    ("url", "without", "credentials"),
    [
        ("https://vault.example:8200", "https://vault.example:8200", None),
        ("https://ops:s3cret@vault.example:8200", "https://vault.example:8200", ("ops", "s3cret")),
        ("http://gw:p%40ss%3Aw%2Frd@127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1", ("gw", "p@ss:w/rd")),
        ("http://a:b@c@proxy/v1", "http://proxy/v1", ("a", "b@c")),  # an unencoded `@`: the last one ends it
        ("https://token@git.example/repo", "https://git.example/repo", ("token", "")),
        ("http://u:p@[::1]:8200/v1", "http://[::1]:8200/v1", ("u", "p")),
        ("https://api.example/v1?to=ops@example.com#a@b", "https://api.example/v1?to=ops@example.com#a@b", None),
        ("ops:s3cret@vault.example", "vault.example", ("ops", "s3cret")),  # no scheme: still not shown
    ],
)
def test_split_takes_the_user_and_password_out_of_the_authority_only(
    url: str, without: str, credentials: tuple[str, str] | None
) -> None:
    assert split(url) == (without, credentials)
    assert shown(url) == without
