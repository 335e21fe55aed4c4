"""An agent framework in a virtual environment of its own, built by the test run and kept for the next one.

Why separate environments: a framework brings its own MCP client (langchain-mcp-adapters pins `mcp<2`, the
server needs 2.x) and its own dependencies, which must not change what the server under test runs with. Each
environment is built with `python -m venv` and pip from the package registry, as a user would, with the
framework's packages pinned; it lives in a folder named by a hash of those pins and this Python's version, so
a later run (or another checkout) with the same pins reuses it and a change of pins builds a new one. A lock
file keeps two runs from building the same folder at once, and a marker written last tells a finished build
from one that was cut short, which is built again.

An environment that cannot be built (pip cannot reach the registry, or cannot resolve the pins) skips the test
that needs it with pip's own last words; nothing else skips it.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

__all__ = ["FRAMEWORKS", "Framework", "cache_root", "framework_python"]

INSTALL_TIMEOUT_S: Final = 600.0
"""How long one environment's build may take (a cold one takes about 15 s on this project's machines)."""


@dataclass(frozen=True)
class Framework:
    """A framework as the tests install it: a short name, and the pinned requirements pip installs."""

    name: str
    requirements: tuple[str, ...]

    @property
    def key(self) -> str:
        """What names its environment: the pins and this interpreter's version, hashed."""
        identity = json.dumps([self.requirements, sys.version, sys.platform])
        return hashlib.sha256(identity.encode()).hexdigest()[:16]


FRAMEWORKS: Final = {
    "pydantic-ai": Framework("pydantic-ai", ("pydantic-ai-slim[openai,mcp]==2.78.0",)),
    "openai-agents": Framework("openai-agents", ("openai-agents==0.24.0",)),
    "langchain": Framework("langchain", ("langchain-mcp-adapters==0.3.2", "langchain-openai==1.8.1")),
}
"""Only the extras each needs: a model client for OpenAI's API and an MCP client."""


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/planner-mcp/frameworks`, or `~/.cache/planner-mcp/frameworks`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "planner-mcp" / "frameworks"


def framework_python(framework: Framework) -> Path:
    """The interpreter of `framework`'s environment, built first if no finished one is cached."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    home = root / f"{framework.name}-{framework.key}"
    ready = home / "planner-mcp-ready"
    with (root / f"{home.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            shutil.rmtree(home, ignore_errors=True)
            _build(home, framework)
            ready.write_text("\n".join(framework.requirements) + "\n", encoding="utf-8")
    return home / "bin" / "python"


def _build(home: Path, framework: Framework) -> None:
    """`python -m venv HOME` and the pinned requirements installed into it; skips the test if pip cannot."""
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
    pip = [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        done = subprocess.run(
            [*pip, *framework.requirements], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"{framework.name}: pip install {' '.join(framework.requirements)} took over {INSTALL_TIMEOUT_S} s")
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        lines = done.stderr.splitlines()
        said = [line for line in lines if line.startswith("ERROR")] or lines[-3:]
        pytest.skip(f"{framework.name}: pip could not install {' '.join(framework.requirements)}: {' | '.join(said)}")
