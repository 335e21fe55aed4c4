"""What every framework script shares: its instructions in, its findings out, and what the framework logged.

The scripts run in a framework's own environment (see tests/frameworks/environments.py), not in the project's,
so this module uses the standard library only. A script reads one JSON object from its first argument and
prints one JSON object on its last line of stdout; everything else it or the framework says goes to stderr.
"""

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

__all__ = ["instructions", "logged", "report", "version"]


def instructions() -> dict[str, Any]:
    """The test's instructions: `server` (command, args, env), `base_url`, `model`, `prompt`."""
    given: dict[str, Any] = json.loads(sys.argv[1])
    return given


@contextmanager
def logged(*chatty: str) -> Iterator[list[str]]:
    """Every warning and error the framework logs (and every Python warning) while the block runs, as
    `LEVEL logger: message` lines, so the test can name what a user would see on their console; from the
    `chatty` loggers, their information lines too."""
    said: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(f"{record.levelname} {record.name}: {record.getMessage()}")

    loud, all_said = _Keep(logging.WARNING), _Keep(logging.INFO)
    logging.captureWarnings(True)
    logging.getLogger().addHandler(loud)
    for name in chatty:
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).addHandler(all_said)
        logging.getLogger(name).propagate = False
    try:
        yield said
    finally:
        logging.getLogger().removeHandler(loud)
        for name in chatty:
            logging.getLogger(name).removeHandler(all_said)


def report(**findings: Any) -> None:
    """Print the findings as one JSON line, the script's only output on stdout."""
    print(json.dumps(findings, default=repr), flush=True)
