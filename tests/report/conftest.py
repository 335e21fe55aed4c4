"""The ledger the report's tests read."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import API_KEY
from tests.peers.openai_server import FakeOpenAI
from tests.report.ledgers import over_http, through_the_gate


@pytest.fixture(scope="package")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ledger for the report's tests, written by real servers (see tests.report.ledgers); tests that change it
    change a copy."""
    folder = tmp_path_factory.mktemp("written")
    ledger_path = folder / "ledger" / "ledger.db"
    with FakeOpenAI() as llm:
        config = LLMConfig(api_key=API_KEY, base_url=llm.base_url, model="test-model", timeout_s=5, max_retries=0)
        through_the_gate(Settings(ledger_path=ledger_path, llm=config), llm)
    over_http(ledger_path, folder)
    yield ledger_path
