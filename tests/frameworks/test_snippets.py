"""The README's framework snippets run as pasted: each starts `planner-mcp serve` from the `PATH`, lists the docs
through the model's call, prints the model's answer, and the call is in the ledger where the server keeps it by
default. Each file under snippets/ is a README snippet as it is printed there, after one first line that tells
mypy its imports live in the framework's environment, not this one."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import rows
from tests.frameworks.drive import loopback_env, tool_results
from tests.frameworks.environments import FRAMEWORKS, framework_python
from tests.peers.openai_server import FakeOpenAI, Reply

_SNIPPETS = Path(__file__).parent / "snippets"
_ANSWER = "There are four runbooks."


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("name", ["pydantic-ai", "openai-agents", "langchain"])
def test_a_readme_snippet_runs_as_pasted(name: str, llm: FakeOpenAI, tmp_path: Path) -> None:
    python = framework_python(FRAMEWORKS[name])
    llm.enqueue(Reply.calls(("list_docs", {})), Reply.text(_ANSWER))
    # What the reader has: planner-mcp on the PATH, a key, an endpoint; here the endpoint is the scripted model.
    env = loopback_env(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=llm.base_url)
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"

    done = subprocess.run(
        [str(python), str(_SNIPPETS / f"{name}.py")], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )

    assert (done.returncode, done.stdout) == (0, _ANSWER + "\n"), done.stderr
    assert [json.loads(result)["action"] for result in tool_results(llm)] == ["list_docs"]
    ledger = tmp_path / ".local" / "share" / "planner-mcp" / "ledger.db"
    assert [(r["action"], r["decision"]) for r in rows(ledger)] == [("list_docs", "EXECUTE")]


_README = Path(__file__).parents[2] / "README.md"


@pytest.mark.parametrize("name", ["pydantic-ai", "openai-agents", "langchain"])
def test_each_snippet_is_the_readme_s_own_text(name: str) -> None:
    """The files run above are the README's blocks, word for word: the README cannot drift from what runs."""
    section = _README.read_text(encoding="utf-8").split("## Use it from an agent framework", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    snippet = (_SNIPPETS / f"{name}.py").read_text(encoding="utf-8").split("\n", 1)[1]
    assert snippet in blocks
