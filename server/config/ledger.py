"""The ledger as the settings describe it: its file, durability, size cap and the chain's key.

The key is read from a file named by PLANNER_MCP_LEDGER_KEY_FILE, never from the database: someone who
can write the ledger file but not read the key cannot forge a row or recompute the chain. Nor may anyone
else be able to replace the key: with the ledger, that is the whole chain.
"""

import logging
import stat

from ledger import Ledger, Scrubber
from server.config.file_trust import UntrustedFile, require_trusted
from server.config.settings import Settings, SettingsError

__all__ = ["MIN_KEY_BYTES", "ledger_key", "open_ledger"]

logger = logging.getLogger("server.audit")  # its name before the regrouping: log collectors filter by it

MIN_KEY_BYTES = 32


def ledger_key(settings: Settings) -> bytes | None:
    """The chain's HMAC key, or None for an unkeyed (SHA-256) chain. Raises `SettingsError` naming the fix."""
    path = settings.ledger_key_file
    if path is None:
        return None
    fix = f"create one with `openssl rand -hex 32 > {path}`, or unset PLANNER_MCP_LEDGER_KEY_FILE"
    try:
        require_trusted(path, "PLANNER_MCP_LEDGER_KEY_FILE")
    except UntrustedFile as exc:
        raise SettingsError(str(exc)) from None
    try:
        key = path.read_bytes().strip()
        mode = path.stat().st_mode
    except OSError as exc:
        raise SettingsError(f"PLANNER_MCP_LEDGER_KEY_FILE: cannot read {path} ({exc.strerror}); {fix}.") from None
    if len(key) < MIN_KEY_BYTES:
        raise SettingsError(
            f"PLANNER_MCP_LEDGER_KEY_FILE: the key in {path} is {len(key)} bytes, shorter than {MIN_KEY_BYTES}; {fix}."
        )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("The ledger key file %s can be read by other users: `chmod 600 %s`.", path, path)
    return key


def open_ledger(settings: Settings, scrubber: Scrubber | None = None, *, key: bytes | None = None) -> Ledger:
    """A Ledger for these settings; the file is opened (and checked) on first use or by `Ledger.open()`."""
    scrubber = scrubber or Scrubber()
    if key is not None:
        scrubber.add(key.decode(errors="ignore"))
    if settings.ledger_url is not None:
        scrubber.add(*_database_passwords(settings.ledger_url))
    return Ledger(
        settings.ledger_path,
        busy_timeout_s=settings.ledger_busy_timeout_s,
        scrubber=scrubber,
        key=key,
        synchronous=settings.ledger_sync,
        max_bytes=settings.ledger_max_bytes,
    )


def _database_passwords(url: str) -> list[str]:
    """The password a PostgreSQL ledger's URL carries, so no error or row can carry it. (One libpq reads from
    PGPASSWORD or a passfile never reaches the server's own text.)"""
    from ledger.postgres.urls import password_of

    return [password] if (password := password_of(url)) else []
