"""The OpenAI-compatible endpoint of the LLM section: the tests' loopback peer, in a process of its own, so
its work does not share an interpreter with the client being timed. Every completion waits a fixed delay, then
answers in the shape the request's schema names: a plan for `generate_plan`, an analysis for `analyze`, so each
tool is timed on its ordinary path rather than on a reply it cannot parse.

`python -m bench.llm_peer DELAY_S` prints its base URL on one line, then serves until its stdin closes.
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.peers.openai_server import FakeOpenAI, Reply
from tests.peers.plans import A_PLAN, AN_ANALYSIS

__all__ = ["llm_peer", "main"]


@contextmanager
def llm_peer(delay_s: float) -> Iterator[str]:
    """Run the peer; yield its base URL (ending in /v1)."""
    with subprocess.Popen(
        [sys.executable, "-m", "bench.llm_peer", repr(delay_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as peer:
        assert peer.stdout is not None and peer.stdin is not None
        try:
            yield peer.stdout.readline().strip()
        finally:
            peer.stdin.close()
            peer.wait(timeout=10)


def main(argv: list[str]) -> None:
    delay = float(argv[0])
    plan = Reply.text(json.dumps(A_PLAN), delay=delay)
    analysis = Reply.text(json.dumps(AN_ANALYSIS), delay=delay)
    with FakeOpenAI(default=plan, by_schema={"plan": plan, "analysis": analysis}, models=["bench-model"]) as peer:
        print(peer.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
