"""The OpenAI-compatible endpoint of the LLM section: the tests' loopback peer, in a process of its own, so
its work does not share an interpreter with the client being timed. Every completion waits a fixed delay.

`python -m bench.llm_peer DELAY_S` prints its base URL on one line, then serves until its stdin closes.
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tests.peers.openai_server import FakeOpenAI, Reply

__all__ = ["PLAN", "llm_peer", "main"]

# A plan generate_plan accepts; analyze returns it as its text. Small, as real plans are.
PLAN = {
    "title": "Add a VM to the prod pool",
    "summary": "Clone the template and register it with HA.",
    "confidence": 0.85,
    "assumptions": ["Template 9000 is current"],
    "uncertainties": [],
    "steps": [
        {"step": 1, "action": "Clone template 9000 to vmid 104", "reversible": True, "rollback": "qm destroy 104"},
        {"step": 2, "action": "Add vmid 104 to HA group prod-ha", "reversible": True, "rollback": "ha-manager remove"},
    ],
    "estimated_tier_required": 0,
    "risks": ["Capacity on pve02"],
}


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
    with FakeOpenAI(default=Reply.text(json.dumps(PLAN), delay=delay), models=["bench-model"]) as peer:
        print(peer.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
