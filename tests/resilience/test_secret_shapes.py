"""One canary for each shape of secret real runbooks hold, through every channel a secret could leave by: a
runbook read back, the caller's `context` and the runbook sent to the LLM, the model's reply, `read_logs`, the
ledger's files and its export, and the log at DEBUG.

The shapes are issue 20's list: AWS secret access keys, `password: …` and `password=…` lines, credentials
inside URLs, `Authorization: Basic`, Vault's legacy `s.` tokens, Slack webhooks, Stripe `sk_live_`, GitLab
`glpat-`, npm tokens, Google `AIza…`, PGP private key blocks; and the JSON keys `pwd`, `access_key`, `auth`,
`key` and `dsn`.
"""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import REDACTED
from server import Settings
from server.config.settings import LLMConfig
from tests.conftest import PLAN, call, connect
from tests.peers.openai_server import FakeOpenAI, Reply
from tests.processes import run_cli
from tests.resilience.canaries import leaks

pytestmark = pytest.mark.anyio


def _exactly(length: int, text: str) -> str:
    assert len(text) >= length
    return text[:length]


AWS_SECRET = _exactly(40, "c4naryAWS/K7MDENG+bPxRfiCYEXAMPLEKEY0123456789")
PASSWORD_LINE = "c4nary-IPMI-passw0rd"
PASSWORD_ASSIGNED = "c4naryDbPass"
URL_PASSWORD = "c4naryURLpass"
BASIC = "YWRtaW46c4naryBASICcredentials=="
VAULT_LEGACY = "s." + _exactly(24, "c4naryVAULTlegacy0123456789")
SLACK = "https://hooks.slack.com/services/T0C4NARY1/B0C4NARY2/c4naryWEBHOOKsecret0123"
STRIPE = "sk_live_c4naryStripeKey0123456789abcd"
GITLAB = "glpat-c4naryGitLabToken012345"
NPM = "npm_" + _exactly(36, "c4naryNPMtoken0123456789abcdefghijklmnop")
GOOGLE = "AIza" + _exactly(35, "Syc4naryGoogleKey0123456789abcdefghijk")
PGP_BODY = ["lQOYBGc4naryPGPline1xyzABCDEFGHIJKLMNOPQRSTUVwxyz0123456789", "c4naryPGPline2=Zx9w"]
PGP = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + "\n".join(PGP_BODY) + "\n-----END PGP PRIVATE KEY BLOCK-----"

RUNBOOK = f"""# Break-glass access to the backup stack

1. Drain pve01 and check `qm status 103` is `stopped`.
2. The bucket's credentials file holds:

       [backup]
       aws_secret_access_key = {AWS_SECRET}

3. IPMI login: admin, password: {PASSWORD_LINE}
4. `export DB_PASSWORD={PASSWORD_ASSIGNED}` then restore into postgres://app:{URL_PASSWORD}@db-01.pve.lan:5432/app
5. `curl -H "Authorization: Basic {BASIC}" https://pbs01.pve.lan:8007/api2/json`
6. The old Vault token still works: VAULT_TOKEN={VAULT_LEGACY}
7. Tell the channel through {SLACK}
8. Refund test charges with {STRIPE}; mirror with {GITLAB}; publish with {NPM}.
9. Maps in the dashboard use {GOOGLE}.
10. The signing key, for emergencies:

{PGP}

Roll back by restoring the previous snapshot.
"""
SHAPES_IN_RUNBOOK = 12

CONTEXT = {
    "pwd": "c4nary-pwd-value",
    "access_key": "c4nary-access-key-value",
    "auth": "c4nary-auth-value",
    "key": "c4nary-key-value",
    "dsn": "c4nary-dsn-value",
    "ticket": "CHG-1234",
}


def _reply_echoing() -> str:
    # A model quoting what it should not have been shown, in every shape, each as it would be recognised: a
    # secret with no shape of its own (an AWS secret key, a context value) is one by its name alone.
    step = {**PLAN["steps"][0], "action": f"Log in with password: {PASSWORD_LINE} and Authorization: Basic {BASIC}"}
    named = [f"aws_secret_access_key={AWS_SECRET}", f"DB_PASSWORD={PASSWORD_ASSIGNED}", json.dumps(CONTEXT)]
    shaped = [f"postgres://app:{URL_PASSWORD}@db-01/app", VAULT_LEGACY, SLACK, STRIPE, GITLAB, NPM, GOOGLE, PGP]
    return json.dumps({**PLAN, "summary": "Use " + ", ".join(shaped + named), "steps": [step]})


@pytest.fixture
def settings(make_settings: Callable[..., Settings], llm: FakeOpenAI, tmp_path: Path) -> Settings:
    data = tmp_path / "data"
    (data / "docs").mkdir(parents=True)
    (data / "inventory").mkdir()
    (data / "docs" / "break-glass.md").write_text(RUNBOOK, encoding="utf-8")
    (data / "inventory" / "proxmox.json").write_text(json.dumps({"cluster": "pve", "db": CONTEXT}), encoding="utf-8")
    llm_config = LLMConfig(api_key="sk-test-0123456789abcdefghij", base_url=llm.base_url, model="test-model",
                           timeout_s=5, max_retries=0)  # fmt: skip
    return make_settings(data_dir=data, llm=llm_config)


async def test_no_shape_of_secret_leaves_by_any_channel(
    settings: Settings, llm: FakeOpenAI, ledger_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    analysis = {"analysis": f"The runbook holds {GITLAB} and DB_PASSWORD={PASSWORD_ASSIGNED}", "confidence": 0.9}
    llm.enqueue(Reply.text(_reply_echoing()), Reply.text(json.dumps(analysis)))
    outputs: dict[str, Any] = {}
    with caplog.at_level(logging.DEBUG):
        async with connect(settings) as client:
            _, outputs["read"] = await call(client, "read_docs", {"name": "break-glass"})
            _, outputs["inventory"] = await call(client, "read_inventory", {})
            arguments = {"description": "Restore db-01", "docs": ["break-glass"], "context": CONTEXT}
            _, outputs["plan"] = await call(client, "generate_plan", arguments)
            _, outputs["analysis"] = await call(client, "analyze", {"description": "Why?", "context": CONTEXT})
            _, outputs["logs"] = await call(client, "read_logs", {"limit": 10})
        blobs = {p.name: p.read_bytes() for p in ledger_path.parent.iterdir()}
    export = run_cli(ledger_path, "ledger", "export")

    assert [o["decision"] for o in outputs.values()] == ["EXECUTE"] * 5, outputs
    content = outputs["read"]["data"]["content"]
    assert "Drain pve01" in content and "Roll back by restoring" in content
    assert content.count(REDACTED) == SHAPES_IN_RUNBOOK, content
    assert "postgres://app:" + REDACTED + "@db-01.pve.lan" in content and "Authorization: Basic " + REDACTED in content
    assert outputs["inventory"]["data"]["content"]["db"]["ticket"] == "CHG-1234"
    assert len(llm.chat_requests) == 2 and "Drain pve01" in json.dumps(llm.chat_requests[0].json)
    assert "CHG-1234" in json.dumps(llm.chat_requests[0].json)  # the context was sent, without its secrets
    assert export.returncode == 0 and export.stdout.count("\n") >= 10
    channels = {
        **{f"output {name}": json.dumps(output).encode() for name, output in outputs.items()},
        **{f"ledger {name}": blob for name, blob in blobs.items()},
        "LLM requests": b"\n".join(r.body for r in llm.requests),
        "ledger export": export.stdout.encode() + export.stderr.encode(),
        "log at DEBUG": caplog.text.encode(),
    }
    assert {name: leaks(blob) for name, blob in channels.items() if leaks(blob)} == {}
