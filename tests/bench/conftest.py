"""What the bench's tests share: a log for the servers' stderr, the LLM peer, and a captured workspace."""

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from bench.llm_peer import llm_peer
from bench.workspace import Workspace, capture_fixture, make_data_dir


@pytest.fixture
def errlog(tmp_path: Path) -> Iterator[TextIO]:
    with (tmp_path / "servers.log").open("w", encoding="utf-8") as log:
        yield log


@pytest.fixture
def peer() -> Iterator[str]:
    with llm_peer(0.0) as base_url:
        yield base_url


@pytest.fixture
async def workspace(tmp_path: Path, peer: str, errlog: TextIO) -> Workspace:
    data = make_data_dir(tmp_path, (1_024, 10_240))
    return await capture_fixture(tmp_path, data, peer, errlog)
