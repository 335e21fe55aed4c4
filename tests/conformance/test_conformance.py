"""The official MCP conformance suite's server scenarios against `planner-mcp serve --transport http`.

Every scenario the pinned suite has is run. Those that exercise what this server offers pass; the rest call the
suite's own fixture tools, resources and prompts (`test_image_content`, `test://static-text`, ...), or use
capabilities this server does not declare, and are listed below with the reason they fail. A new failure, or a
listed scenario that starts to pass, fails this test, so the list stays true.

The suite cannot send a header, and this server answers nothing without a bearer token: a loopback proxy
(`bearer_proxy`) adds the token and changes nothing else; the server's public URL is the proxy's, as it would be
behind any gateway. Authentication is never turned off. `.ci/run` installs the suite from `package-lock.json`
here (`npm ci`); without Node or the installed suite these tests skip and say how to get it.
"""

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.bearer_proxy import BearerProxy
from tests.http_server import free_port, serving

SUITE_VERSION = "0.1.13"
"""The newest release that runs on Node 20; package.json pins it exactly."""

_HERE = Path(__file__).parent
SUITE = _HERE / "node_modules" / ".bin" / "conformance"

EXPECTED_FAILURES: dict[str, str] = {
    # Capabilities this server does not declare (its `initialize` offers tools, resources and prompts only).
    "logging-set-level": "no `logging` capability: logging/setLevel is not a method here",
    "completion-complete": "no `completions` capability: completion/complete is not a method here",
    "resources-subscribe": "resources are declared with `subscribe: false`: resources/subscribe is not a method here",
    "resources-unsubscribe": "resources are declared with `subscribe: false`: resources/unsubscribe is not a method "
    "here",
    "tools-call-with-logging": "sets a log level first (no `logging` capability), then calls the suite's "
    "test_tool_with_logging",
    # The suite's fixture tools, which a server under test is asked to implement; this one has its six tools only.
    "tools-call-image": "calls the suite's test_image_content tool (no tool here returns images)",
    "tools-call-audio": "calls the suite's test_audio_content tool (no tool here returns audio)",
    "tools-call-embedded-resource": "calls the suite's test_embedded_resource tool",
    "tools-call-mixed-content": "calls the suite's test_multiple_content_types tool",
    "tools-call-with-progress": "calls the suite's test_tool_with_progress tool (only the LLM tools report progress)",
    "tools-call-sampling": "calls the suite's test_sampling tool: this server never asks the client to sample",
    "tools-call-elicitation": "calls the suite's test_elicitation tool: this server never asks the user for input",
    "elicitation-sep1034-defaults": "calls the suite's test_elicitation_sep1034_defaults tool (no elicitation here)",
    "elicitation-sep1330-enums": "calls the suite's test_elicitation_sep1330_enums tool (no elicitation here)",
    "json-schema-2020-12": "looks for the suite's json_schema_2020_12_tool (pending in the suite)",
    "server-sse-polling": "calls the suite's test_reconnection tool, and wants resumable SSE streams (priming event, "
    "retry field), which need an event store this server does not keep (pending in the suite)",
    # The suite's fixture resources and prompts; this server has its own (policy://effective, plan_request, ...).
    "resources-read-text": "reads the suite's test://static-text resource",
    "resources-read-binary": "reads the suite's test://static-binary resource",
    "resources-templates-read": "reads the suite's test://template/{id}/data template",
    "prompts-get-simple": "gets the suite's test_simple_prompt prompt",
    "prompts-get-with-args": "gets the suite's test_prompt_with_arguments prompt",
    "prompts-get-embedded-resource": "gets the suite's test_prompt_with_embedded_resource prompt",
    "prompts-get-with-image": "gets the suite's test_prompt_with_image prompt",
}
"""Scenario -> why it fails against this server. Two scenarios that call fixture tools pass all the same, because
they check only the shape of the answer: tools-call-simple-text (any text content) and tools-call-error (`isError`
with text), which this server's refusal of an unknown tool has."""

_TOKEN = "conformance-bearer-token-0123456789"
_RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$")
_FAILED = ("FAILURE", "WARNING")
"""The suite's own baseline counts a warning as a failure too."""

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.skipif(
        shutil.which("node") is None or not SUITE.exists(),
        reason="MCP conformance suite not found: install Node 20 and run `npm ci --prefix tests/conformance` "
        "(.ci/run does this)",
    ),
]


def _suite(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "NO_COLOR": "1"}
    return subprocess.run([str(SUITE), *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def _scenarios(cwd: Path) -> set[str]:
    """The server scenarios the installed suite has, from `conformance list --server`."""
    listed = _suite("list", "--server", cwd=cwd)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return {line.strip()[2:] for line in listed.stdout.splitlines() if line.strip().startswith("- ")}


def _checks(output: Path) -> dict[str, list[dict[str, Any]]]:
    """Each scenario's checks, from the `checks.json` the suite saved in a folder of its own per scenario."""
    found: dict[str, list[dict[str, Any]]] = {}
    for folder in output.iterdir():
        if match := _RESULT_DIR.match(folder.name):
            found[match["scenario"]] = json.loads((folder / "checks.json").read_text())
    return found


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every scenario of the suite, run once against a real server behind the token-adding proxy."""
    work = tmp_path_factory.mktemp("conformance")
    port = free_port()
    with BearerProxy(port, _TOKEN) as proxy:
        env = {"PLANNER_MCP_HTTP_TOKEN": _TOKEN, "PLANNER_MCP_HTTP_PUBLIC_URL": proxy.url}
        with serving(work / "ledger.db", port=port, env=env):
            run = _suite("server", "--url", proxy.url, "--suite", "all", "-o", str(work / "results"), cwd=work)
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 1: some scenario failed, judged below
    yield _checks(work / "results")


def _failed(checks: list[dict[str, Any]]) -> list[str]:
    return [f"{c['id']}: {c.get('errorMessage') or c['description']}" for c in checks if c["status"] in _FAILED]


def test_the_suite_is_the_pinned_version(tmp_path: Path) -> None:
    shown = _suite("--version", cwd=tmp_path)
    assert shown.stdout.strip() == SUITE_VERSION, shown.stdout + shown.stderr


def test_every_scenario_of_the_suite_ran(results: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    assert set(results) == _scenarios(tmp_path)
    assert set(EXPECTED_FAILURES) <= set(results), "an expected failure names no scenario of the suite"


def test_every_scenario_that_applies_to_this_server_passes(results: dict[str, list[dict[str, Any]]]) -> None:
    failing = {
        scenario: _failed(checks)
        for scenario, checks in results.items()
        if scenario not in EXPECTED_FAILURES and _failed(checks)
    }
    assert failing == {}, "new conformance failures:\n" + json.dumps(failing, indent=2)


def test_each_expected_failure_still_fails(results: dict[str, list[dict[str, Any]]]) -> None:
    passing = [scenario for scenario in EXPECTED_FAILURES if scenario in results and not _failed(results[scenario])]
    assert passing == [], f"now passing: take them out of EXPECTED_FAILURES: {passing}"


def test_a_foreign_host_is_refused_by_the_rebinding_check_not_for_want_of_a_token(
    results: dict[str, list[dict[str, Any]]],
) -> None:
    """The proxy's token reaches the server: the suite's forged Host is refused as a Host (421), not as an
    unauthenticated request (401), and its loopback Host is served."""
    statuses = {check["id"]: check["details"]["statusCode"] for check in results["dns-rebinding-protection"]}
    assert statuses == {"localhost-host-rebinding-rejected": 421, "localhost-host-valid-accepted": 200}
