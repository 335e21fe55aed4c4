"""Shared fixtures: real SQLite files on tmp_path, real OpenAI-compatible and Vault servers on loopback, and
settings that point at them."""

import json
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult
from pydantic import SecretStr

from contracts import default_agent
from ledger.metrics import METRIC_COLUMNS, derived
from ledger.storage import Conn
from server import Settings, build_server
from server.config.settings import LLMConfig
from server.vault import VaultConfig
from tests.peers.openai_server import FakeOpenAI
from tests.peers.plans import A_PLAN
from tests.peers.vault_server import FakeVault
from tests.postgres_cluster import PostgresCluster
from tests.small_disk import small_tmpfs
from tests.vault_seed import TOKEN, load

API_KEY = "sk-test-planner-0123456789abcdefghij"
"""A key shaped like a real one, so tests can prove it never appears anywhere it should not."""

DEFAULT_TOOLS = ["read_docs", "list_docs", "read_inventory", "generate_plan", "analyze", "read_logs"]
"""What the seed's tier-0 policy registers, in catalogue order."""

_Config = TypeVar("_Config")

PLAN = A_PLAN
"""A plan the server accepts (re-exported for the tests that import it from here)."""


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["auto", "legacy"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: 2026-07-28 (auto) and the 2025-11-25 handshake hosts speak today (legacy)."""
    return str(request.param)


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger" / "ledger.db"


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def make_settings(ledger_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return Settings(**{"ledger_path": ledger_path, **overrides})

    return make


@pytest.fixture
def llm_config(llm: FakeOpenAI) -> Callable[..., LLMConfig]:
    """The LLM settings of the shared peer, with changes (retries, timeouts) for one test."""
    return _with_defaults(LLMConfig, api_key=API_KEY, base_url=llm.base_url, model="test-model", timeout_s=5,
                          max_retries=0)  # fmt: skip


@pytest.fixture
def llm_settings(make_settings: Callable[..., Settings], llm_config: Callable[..., LLMConfig]) -> Settings:
    return make_settings(llm=llm_config())


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    """A Vault on loopback holding what a planner's Vault holds (tests/vault_seed.py), no request recorded yet."""
    with FakeVault() as server:
        load(server)
        server.reset_requests()
        yield server


@pytest.fixture
def vault_config(vault: FakeVault) -> Callable[..., VaultConfig]:
    """The Vault settings that point at the shared peer, with changes for one test."""
    return _with_defaults(VaultConfig, addr=vault.addr, token=SecretStr(TOKEN), timeout_s=2.0, retries=1,
                          cache_ttl_s=0.0)  # fmt: skip


@pytest.fixture
def vault_settings(
    make_settings: Callable[..., Settings], vault_config: Callable[..., VaultConfig]
) -> Callable[..., Settings]:
    """Settings whose Vault config takes the first argument's changes, and whose other fields take the keywords."""
    return with_part(make_settings, "vault", vault_config)


def _with_defaults(kind: Callable[..., _Config], **defaults: Any) -> Callable[..., _Config]:
    """`kind(**defaults)`, each default replaceable by a test's changes."""
    return lambda **changes: kind(**{**defaults, **changes})


def with_part(make_settings: Callable[..., Settings], part: str, config: Callable[..., Any]) -> Callable[..., Settings]:
    """Settings whose `part` (llm, vault) takes the first argument's changes, and whose other fields the keywords."""

    def make(part_changes: dict[str, Any] | None = None, **changes: Any) -> Settings:
        return make_settings(**{part: config(**(part_changes or {}))}, **changes)

    return make


async def until(condition: Callable[[], bool], timeout_s: float = 5) -> None:
    """Wait, bounded, for something another thread does (a request reaching a peer)."""
    with anyio.fail_after(timeout_s):
        while not condition():
            await anyio.sleep(0.01)


@asynccontextmanager
async def connect(settings: Settings, mode: str = "auto") -> AsyncIterator[Client]:
    async with Client(build_server(settings), mode=mode) as client:
        yield client


async def call(
    client: Client, tool: str, arguments: dict[str, Any] | None = None
) -> tuple[CallToolResult, dict[str, Any]]:
    """Call a tool with a bounded wait; return the result and its AgentOutput."""
    with anyio.fail_after(15):
        result = await client.call_tool(tool, arguments or {})
    assert result.structured_content is not None
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    return result, result.structured_content


async def call_once(
    settings: Settings, tool: str, arguments: dict[str, Any] | None = None
) -> tuple[CallToolResult, dict[str, Any]]:
    """One call to a server of its own, in memory: connected, called, closed (so its ledger is settled)."""
    async with connect(settings) as client:
        return await call(client, tool, arguments)


def rows(path: Path | str, table: str = "agent_actions", order: str = "id") -> list[dict[str, Any]]:
    """Read ledger rows straight from the file (or the PostgreSQL database a URL names), the way an auditor would."""
    if isinstance(path, str):
        from ledger.reader import read_only

        with read_only(path) as pg:
            cursor = pg.execute(f"SELECT * FROM {table} ORDER BY {order}")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]
    finally:
        conn.close()


def policy_file(path: Path, **changes: Any) -> Path:
    """A policy TOML file, written the way an operator would: the seed's tier-0 planner with `changes` applied
    (tables as dicts, sets as sorted lists)."""

    def toml(value: Any) -> str:
        return json.dumps(sorted(value) if isinstance(value, frozenset | set) else value)

    fields = {**default_agent().model_dump(exclude_none=True), **changes}
    tables = {k: v for k, v in fields.items() if isinstance(v, dict)}
    lines = [f"{k} = {toml(v)}" for k, v in fields.items() if k not in tables and v is not None]
    for table, entries in tables.items():
        lines += [f"[{table}]", *(f'"{k}" = {toml(v)}' for k, v in entries.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def recount_metrics(conn: sqlite3.Connection) -> None:
    """Rewrite agent_metrics to match the outcomes as they now stand, as an intruder who edited outcomes would."""
    conn.execute("DELETE FROM agent_metrics")
    for row in derived(cast(Conn, conn)):
        conn.execute(
            "INSERT INTO agent_metrics (agent_id, current_tier, total_runs, compliant_runs, consecutive_compliant,"
            " refused_runs, error_runs, last_active_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [row[name] for name in ("agent_id", *METRIC_COLUMNS)],
        )


# --- PostgreSQL ---------------------------------------------------------------------------------------------------
# Real servers the tests start themselves (tests/postgres_cluster.py); every fixture skips with a message naming
# what is missing (psycopg, the PostgreSQL binaries, the `postgres` user, the right to mount a tmpfs).

SMALL_DISK_SETTINGS = {"checkpoint_timeout": "1d"}
"""A checkpoint on a full data disk PANICs PostgreSQL (it cannot write pg_logical/replorigin_checkpoint), so a
cluster on a small disk takes none on a timer: only a test's own CHECKPOINT, or max_wal_size of WAL, brings one."""


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL for the whole run: tests that only need a database share it (and must not stop it)."""
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_database(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database on the shared cluster, as the superuser's URL; dropped after the test."""
    name = f"test_{secrets.token_hex(6)}"
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture
def pg_cluster_factory() -> Iterator[Callable[..., PostgresCluster]]:
    """Clusters of the test's own, to stop, restart, crash or starve of disk; all stopped and removed after it.
    `make(disk_mb=64)` puts the data folder on a tmpfs of that size (fill it with
    `tests.small_disk.full_disk(cluster.data_dir.parent)`); `settings=` are added to postgresql.conf."""
    with ExitStack() as stack:

        def make(*, disk_mb: int | None = None, settings: Mapping[str, str] | None = None) -> PostgresCluster:
            data_dir = None
            if disk_mb is not None:
                data_dir = stack.enter_context(small_tmpfs(disk_mb)) / "data"
                settings = {**SMALL_DISK_SETTINGS, **(settings or {})}
            return stack.enter_context(PostgresCluster(data_dir=data_dir, settings=settings))

        yield make


def init_ledger(cluster: PostgresCluster, dbname: str) -> str:
    """Apply the ledger's schema to `dbname` as its owner (the superuser), and return the URL a server connects
    with: a login role of its own that is a member of planner_mcp_writer, and nothing more."""
    from ledger.postgres.init import initialise

    initialise(cluster.superuser_url(dbname))
    role, password = f"writer_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    cluster.create_role(role, password, in_roles=("planner_mcp_writer",))
    return cluster.url(role, password, dbname)


@pytest.fixture
def pg_ledger(pg_cluster: PostgresCluster, pg_database: str) -> str:
    """A fresh database holding an empty ledger, as the URL of a writer (see `init_ledger`)."""
    return init_ledger(pg_cluster, pg_database.rsplit("/", 1)[1])
