"""The layers stay visible: the import-linter contracts hold and the module graph has no cycles.

Why a test and not only a linter run: `make test` (and so CI) is the one command every change goes
through, and a dependency that points the wrong way is cheapest to undo in the change that adds it.
docs/architecture.md ("Layers") says what may import what and how to read a failure here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / ".importlinter"
PACKAGE = "weighbridge"

# Imports that close a cycle today and are allowed to until the file that holds them is changed.
# Each is an import inside a function (none runs at module import time), in a file that was being
# rewritten by other work when the contracts were added. Key: (importer, imported); value: why, and
# the change that removes it. Delete an entry when its cycle is gone: the test says when.
KNOWN_CYCLE_EDGES: Mapping[tuple[str, str], str] = {
    ("weighbridge.services.evidence", "weighbridge.services.review"): (
        "evidence.run_proof imports review.journal_digest inside the function while review imports "
        "evidence (and adjudication, which imports evidence). Fix: move journal_digest out of "
        "services/review.py beside the other run records (e.g. a services/runs.py that imports only "
        "domain, ledger.canonical and store.schema) and import it from there in review and evidence."
    ),
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Imports that run: `if TYPE_CHECKING:` imports are left out of the cycle check, because they
    never execute and are the usual way to name a type across a dependency that points the other
    way. The layer contracts still count them."""
    return grimp.build_graph(PACKAGE, exclude_type_checking_imports=True, cache_dir=None)


def test_layer_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    code = lint_imports(config_filename=str(CONFIG), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 0, f"import-linter contracts in {CONFIG.name} are broken:\n{report}"


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    graph = copy.deepcopy(graph)  # the fixture is shared; the exceptions come out of a copy only
    for importer, imported in KNOWN_CYCLE_EDGES:
        if graph.direct_import_exists(importer=importer, imported=imported):
            graph.remove_import(importer=importer, imported=imported)
    cycles = strongly_connected(graph.modules, graph.find_modules_directly_imported_by)
    assert not cycles, "import cycles (each: the modules, then the imports between them):\n" + "\n".join(
        describe_cycle(graph, cycle) for cycle in cycles
    )


@pytest.mark.parametrize(("importer", "imported"), sorted(KNOWN_CYCLE_EDGES))
def test_known_cycle_exceptions_are_still_needed(graph: grimp.ImportGraph, importer: str, imported: str) -> None:
    """A stale exception would let the cycle come back unnoticed, so each must still close one."""
    assert graph.direct_import_exists(importer=importer, imported=imported), (
        f"{importer} no longer imports {imported}: delete its entry from KNOWN_CYCLE_EDGES"
    )
    assert graph.find_shortest_chain(importer=imported, imported=importer) is not None, (
        f"{importer} -> {imported} no longer closes a cycle: delete its entry from KNOWN_CYCLE_EDGES"
    )


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        # The innermost core: records, protocols, registries and the run loop, testable without a model.
        ("weighbridge.evals", {"weighbridge.evals", "weighbridge.domain", "weighbridge.errors"}),
        # Plain records shared by everything.
        ("weighbridge.domain", {"weighbridge.domain", "weighbridge.errors"}),
        ("weighbridge.errors", {"weighbridge.errors"}),
    ],
)
def test_inner_packages_import_only_what_is_beneath_them(package: str, allowed: set[str]) -> None:
    """Said once more, by name, than the layers contract says it: any new package (which the
    contract would first make someone place in a layer) is outside these sets as well."""
    full = grimp.build_graph(PACKAGE, exclude_type_checking_imports=False, cache_dir=None)
    outside = sorted(
        f"{importer} -> {imported} (line {detail['line_number']}: {detail['line_contents']})"
        for importer in _own_modules(full, package)
        for imported in full.find_modules_directly_imported_by(importer)
        if not any(imported == a or imported.startswith(a + ".") for a in allowed)
        for detail in full.get_import_details(importer=importer, imported=imported)
    )
    assert not outside, f"{package} may import only {sorted(allowed)}:\n" + "\n".join(outside)


def _own_modules(graph: grimp.ImportGraph, package: str) -> set[str]:
    return {package, *graph.find_descendants(package)}


def strongly_connected(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or through others."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(successors(node)):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return sorted(found)


def describe_cycle(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    members = set(cycle)
    lines = ["  " + ", ".join(cycle)]
    for importer in cycle:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"    {importer} -> {imported}  line {detail['line_number']}: {detail['line_contents']}")
    return "\n".join(lines)


def test_cycle_finder_finds_a_cycle() -> None:
    """The check above is only as good as this function: a cycle through three modules is found."""
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(edges, lambda n: edges.get(n, set())) == [["a", "b", "c"]]
