"""The layers the tree shows are the layers the imports keep: nothing imports from a layer above its own, and no
module imports itself round a cycle. Imports inside functions count as much as those at the top of a module."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

LAYERS: tuple[tuple[str, ...], ...] = (
    ("server.cli",),
    ("server.transports", "server.doctor", "server.report"),
    ("server.app",),
    ("server.tools",),
    ("server.governance",),
    ("server.stores", "server.llm"),
    ("server.vault",),
    ("server.config",),
    ("server.call",),
    ("server.telemetry",),
    ("server.support",),
    ("ledger",),
    ("contracts",),
)
"""Top to bottom. A module may import from its own part and from the layers below; parts that share a layer
(the transports and the doctor, the stores and the LLM client) do not import each other."""

_ROOTS = ("server", "ledger", "contracts")
_ENTRY = {"server", "server.__main__"}  # the package's front door may reach anything


def _modules() -> dict[str, Path]:
    found = {}
    for root in _ROOTS:
        for path in (ROOT / root).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str) -> Iterator[str]:
    """The modules of ours that `name` imports, each resolved to the longest known module it names."""
    tree = ast.parse(MODULES[name].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in _ROOTS and (known := _known(target)) is not None:
                yield known
                break


def _known(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _part(name: str) -> tuple[int, str]:
    for rank, parts in enumerate(LAYERS):
        for part in parts:
            if name == part or name.startswith(part + "."):
                return rank, part
    raise AssertionError(f"{name} is in no layer: add its package to LAYERS")


def test_every_module_of_ours_is_in_a_layer() -> None:
    assert len(MODULES) > 100
    for name in MODULES.keys() - _ENTRY:
        _part(name)


def test_no_module_imports_from_a_layer_above_its_own_or_from_a_neighbour_in_its_layer() -> None:
    wrong = []
    for name in sorted(MODULES.keys() - _ENTRY):
        rank, part = _part(name)
        for imported in _imports(name):
            their_rank, their_part = _part(imported)
            if their_rank < rank or (their_rank == rank and their_part != part):
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


@pytest.mark.parametrize(("package", "allowed"), [("contracts", ("contracts",)), ("ledger", ("ledger", "contracts"))])
def test_contracts_import_nothing_of_ours_and_the_ledger_only_contracts(package: str, allowed: tuple[str, ...]) -> None:
    for name in MODULES:
        if name.split(".")[0] == package:
            assert {imported.split(".")[0] for imported in _imports(name)} <= set(allowed), name


def test_nothing_below_the_transports_imports_them() -> None:
    transports_rank, _ = _part("server.transports")
    for name in MODULES.keys() - _ENTRY:
        if _part(name)[0] > transports_rank:
            assert not any(i.startswith("server.transports") for i in _imports(name)), name


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = {name: set(_imports(name)) - {name} for name in MODULES}
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done
    cycles = []

    def walk(name: str, path: list[str]) -> None:
        state[name] = 1
        for imported in sorted(graph[name]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                walk(imported, [*path, imported])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert cycles == []
