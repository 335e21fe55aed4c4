"""Helpers of the PostgreSQL ledger tests: a ledger's database by name, and a connection speaking the ledger's SQL."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed: install the postgres extra")

import psycopg

from ledger.postgres.catalog import SCHEMA
from ledger.postgres.storage import PostgresConn


def dbname(url: str) -> str:
    """The database a ledger's URL names (the tests' URLs end with it)."""
    return url.rsplit("/", 1)[1]


@contextmanager
def ledger_conn(url: str, *settings: str) -> Iterator[PostgresConn]:
    """A connection (autocommit) to the ledger's schema as the URL's role, taking the ledger's `?` placeholders,
    with `settings` applied first (`session_replication_role = replica`, say)."""
    with psycopg.connect(url, autocommit=True) as raw:
        raw.execute(f"SET search_path = {SCHEMA}")
        for setting in settings:
            raw.execute(f"SET {setting}")
        yield PostgresConn(raw)
