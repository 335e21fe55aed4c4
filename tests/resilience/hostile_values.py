"""Hypothesis strategies for hostile tool arguments: what a JSON client can send that a model might invent.

Unicode oddities (zero-width, RTL override, confusables), control characters, path tricks, huge strings, deep
nesting, wrong types and values at each limit, for `test_hostile_arguments`.
"""

import re
from typing import Any

from hypothesis import strategies as st

from server.governance.envelope import MAX_ARGUMENT_BYTES

__all__ = [
    "BIG_INTS",
    "VALID_NAME",
    "entry_names",
    "hostile_text",
    "huge_text",
    "json_values",
    "llm_args",
    "texts",
    "wrong_types",
]

_MAX_DEPTH = 230
"""The in-memory client cannot serialize much deeper (~254); the stdio test below sends thousands."""
VALID_NAME = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")

# -- strategies ----------------------------------------------------------------------------------------------

_ODD = [
    *("\u202e", "\u202d", "\u2066", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"),  # bidi overrides, zero-width
    *("\u0301", "\u0338", "\u20dd"),  # combining marks
    *("\U0001f600", "\U0001f469\u200d\U0001f4bb", "\U0001f1fa\U0001f1f8"),  # emoji, a ZWJ sequence, a flag
    *("\uff0e", "\uff0f", "\uff3c", "\u2024", "\u2025", "\u2215", "\u2044", "\u29f8", "\ufe52", "\u3002"),  # . / \
    *("\u212a", "\u017f", "\uff41", "\u0430", "\u2170", "\ufb01", "\u00b2", "\uff0d"),  # NFKC confusables
    *("\x00", "\x01", "\x1b", "\x7f", "\t", "\n", "\r", "\u0085", "\u2028", "\u2029", "\u00a0", "\u3000"),
    *("\ue000", "\uffff", "\U0010ffff", "\ud7ff"),
]
_PATH_TRICKS = [
    *("..", "../", "../..", "../../etc/passwd", "/etc/passwd", "/etc/passwd\x00.md", "../" * 40 + "etc/passwd"),
    *("%2e%2e", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%252e%252e%252f", "..%2f..%2fetc", "%2F", "..%5c..%5c"),
    *("api-keys/openrouter", "api-keys%2fopenrouter", "metadata/", "metadata/docs/backup-restore"),
    *("secret/data/api-keys/openrouter", "docs/../..", "docs/../inventory/proxmox", "inventory/proxmox"),
    *("..\\..\\etc\\passwd", "\\etc\\passwd", "C:\\Windows\\win.ini", "\\\\server\\share", "/", ".", "..."),
    *("backup-restore.", "backup-restore..", "backup-restore ", " backup-restore", "backup-restore.md.", "a/" * 64),
    *("backup-restore/", "./backup-restore", "backup-restore/.", "backup-restore%00", "file:///etc/passwd"),
    *("~", "~root/.ssh/id_rsa", "$HOME", "${jndi:ldap://x}", "-rf", ".hidden", "a..b", "a.-b", "a_", "_a", "a" * 129),
    *("\uff42\uff41\uff43\uff4b\uff55\uff50-restore", "backup\uff0drestore", "proxmox\uff0ejson", "\u2025\u2215etc"),
    *("\uff0e\uff0e\uff0fetc\uff0fpasswd", "backup\u2024restore", "backup-restore\u200b", "\u202eerotser-pukcab"),
]
_VALID = ["backup-restore", "vm-provisioning", "proxmox", "edge-sites", "backup-restore.md", "proxmox.json", "x" * 128]
_VALID += ["no-such-doc", "a", "A.b_c-d", "CON", "generate_plan"]

BIG_INTS = [10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, 0, -1]
huge_text = st.builds(
    lambda n, unit: unit * (n // len(unit.encode())),
    st.integers(MAX_ARGUMENT_BYTES - 64, MAX_ARGUMENT_BYTES + 4096),
    st.sampled_from(["x", "\u00e9", "\u202e", "\U0001f600", "../", "\x00", "%2e"]),
)
_LOOKALIKES = {".": "\uff0e", "-": "\uff0d", "_": "\uff3f", "a": "\uff41", "k": "\u212a", "s": "\u017f", "i": "\u2170"}
_LOOKALIKES |= {"o": "\u1d52", "p": "\u0440", "r": "\u0433", "x": "\u0445", "e": "\u0435", "2": "\u00b2", "m": "\u217f"}


def _disguised(name: str, positions: list[int]) -> str:
    """`name` with some characters replaced by look-alikes, most of which NFKC folds back to the original."""
    chars = list(name)
    for position in positions:
        at = position % len(chars)
        chars[at] = _LOOKALIKES.get(chars[at].lower(), chars[at] + "\u0301")
    return "".join(chars)


_confusable = st.builds(_disguised, st.sampled_from(_VALID), st.lists(st.integers(0, 200), min_size=1, max_size=3))
texts = st.one_of(
    st.sampled_from(_PATH_TRICKS),
    _confusable,
    st.tuples(st.sampled_from(_VALID), st.sampled_from(_ODD), st.booleans()).map(
        lambda t: t[1] + t[0] if t[2] else t[0] + t[1]
    ),
    st.lists(st.sampled_from(_ODD + _PATH_TRICKS + _VALID), min_size=1, max_size=6).map("".join),
    st.text(st.characters(codec="utf-8"), max_size=40),  # what a JSON client can send: no lone surrogates
)
hostile_text = st.one_of(texts, huge_text)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BIG_INTS),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    _leaf, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(texts, kids, max_size=4)), max_leaves=12
)


def _nest(depth: int, kind: str, leaf: Any) -> Any:
    for level in range(depth):
        as_list = kind == "list" or (kind == "mixed" and level % 2 == 0)
        leaf = [leaf] if as_list else {"a": leaf}
    return leaf


_deep = st.builds(_nest, st.integers(50, _MAX_DEPTH), st.sampled_from(["list", "dict", "mixed"]), _leaf)
wrong_types = st.one_of(_leaf.filter(lambda v: not isinstance(v, str)), st.lists(texts, max_size=3), _deep, json_values)
entry_names = st.one_of(st.sampled_from(_VALID), hostile_text, wrong_types)
_bulky = st.builds(lambda n: ["a"] * n, st.integers(1, 30_000))


def _at_length(limit: int) -> st.SearchStrategy[str]:
    """Text a few characters either side of a length limit."""
    return st.integers(limit - 8, limit + 8).map(lambda n: "d" * n)


def _near_limit(limit: int) -> st.SearchStrategy[dict[str, Any]]:
    """A context object whose JSON is within a few bytes of `limit`, on either side."""
    return st.integers(limit - 40, limit + 40).map(lambda n: {"k": "y" * (n - 10)})


_contexts = st.one_of(
    st.dictionaries(texts, json_values, max_size=5),
    st.builds(lambda v: {"deep": v}, _deep),
    _near_limit(32 * 1024),
    wrong_types,
)
_descriptions = st.one_of(st.sampled_from(["Add a VM", ""]), _at_length(8000), hostile_text, wrong_types)
_docs = st.one_of(st.lists(entry_names, max_size=7), _bulky, wrong_types)
_constraints = st.one_of(st.lists(st.one_of(texts, _at_length(500), wrong_types), max_size=25), _bulky, wrong_types)
# Well-formed arguments whose content is hostile: they reach the LLM, and must come back as an answer.
_fine_descriptions = st.one_of(
    texts.filter(lambda t: 1 <= len(t) <= 8000), _at_length(8000).filter(lambda t: len(t) <= 8000)
)
_fine = {
    "context": st.dictionaries(texts, json_values, max_size=5),
    "docs": st.lists(st.sampled_from(["backup-restore", "vm-provisioning", "no-such-doc"]), max_size=5),
    "constraints": st.lists(texts.filter(lambda t: 1 <= len(t) <= 500), max_size=20),
}
_hostile = {"context": _contexts, "docs": _docs, "constraints": _constraints}


def llm_args(*fields: str) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments of an LLM tool: well-formed but hostile, or with any of `fields` (or the description) wrong."""
    fine, hostile = {f: _fine[f] for f in fields}, {f: _hostile[f] for f in fields}
    return st.one_of(
        st.fixed_dictionaries({"description": _fine_descriptions}, optional=fine),
        st.fixed_dictionaries({"description": _fine_descriptions}, optional=hostile),
        st.fixed_dictionaries({}, optional={"description": _descriptions, **hostile}),
        # Two limits worth aiming at: the context's 32 KiB, and a doc name that must not leave docs/.
        st.fixed_dictionaries({"description": _fine_descriptions, "context": _near_limit(32 * 1024)}),
        st.fixed_dictionaries({"description": _fine_descriptions, "docs": st.lists(texts, min_size=1, max_size=5)}),
    )
