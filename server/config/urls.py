"""URLs from the settings, as they may be shown, and the user and password some carry.

A user and password written into a URL (`https://user:pass@proxy.example/v1`) are used as the HTTP libraries
would use them, as HTTP Basic credentials, and never shown. Every URL the server prints, logs, records or
returns goes through `shown`; the URL handed to a library goes through `split`, because libraries log the
URLs they request, and the credentials are handed over beside it.
"""

from urllib.parse import unquote

__all__ = ["Credentials", "shown", "split"]

Credentials = tuple[str, str]
"""A user and a password, decoded."""


def split(url: str) -> tuple[str, Credentials | None]:
    """`url` without its userinfo, and the user and password it held, if any."""
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    ends = [at for at in (url.find(stop, start) for stop in "/?#") if at >= 0]
    at = url.rfind("@", start, min(ends, default=len(url)))
    if at < 0:
        return url, None
    user, _, password = url[start:at].partition(":")
    return url[:start] + url[at + 1 :], (unquote(user), unquote(password))


def shown(url: str) -> str:
    """`url` as it may be printed, logged, recorded or returned: without a user or password."""
    return split(url)[0]
