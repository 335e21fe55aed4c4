"""The README's list of error kinds is the enumeration's: a kind added, renamed or dropped on one side only fails here.

The list is two sentences: the one under "## Tools" that starts "Errors set `isError`" names every kind but
Vault's ("the Vault kinds below"), and the one under "### Vault" that starts "Failures are specific" names every
`VAULT_*` kind (beside the store kinds a Vault read can also end in).
"""

import re
from collections import Counter
from pathlib import Path

from contracts import AgentOutput, ErrorKind

README = Path(__file__).parents[2] / "README.md"

_KIND = re.compile(r"`([A-Z][A-Z0-9_]+)`")
_VAULT = "VAULT_"


def _sentence(text: str, start: str) -> str:
    """The sentence of `text` that begins with `start`, up to its full stop."""
    at = text.index(start)
    end = re.compile(r"\.(?:\s|$)").search(text, at)
    assert end is not None, f"the sentence starting {start!r} has no end"
    return text[at : end.start()]


def _listed(start: str) -> Counter[str]:
    return Counter(_KIND.findall(_sentence(README.read_text(encoding="utf-8"), start)))


def test_the_readme_lists_every_kind_but_vaults_once_under_tools() -> None:
    listed = _listed("Errors set `isError`")
    assert [kind for kind, times in listed.items() if times > 1] == []
    assert set(listed) == {kind.value for kind in ErrorKind if not kind.startswith(_VAULT)}


def test_the_readme_lists_every_vault_kind_once_under_vault() -> None:
    listed = _listed("Failures are specific")
    assert [kind for kind, times in listed.items() if times > 1] == []
    assert {kind for kind in listed if kind.startswith(_VAULT)} == {k.value for k in ErrorKind if k.startswith(_VAULT)}
    assert set(listed) <= {kind.value for kind in ErrorKind}


def test_the_output_schema_lists_the_kinds() -> None:
    schema = AgentOutput.model_json_schema()
    assert schema["$defs"]["ErrorInfo"]["properties"]["type"]["$ref"] == "#/$defs/ErrorKind"
    assert schema["$defs"]["ErrorKind"]["enum"] == [kind.value for kind in ErrorKind]


def test_a_kind_is_its_own_name_so_the_json_and_the_ledger_keep_todays_strings() -> None:
    assert [kind.value for kind in ErrorKind] == [kind.name for kind in ErrorKind]
