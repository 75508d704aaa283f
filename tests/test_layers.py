"""The packages of ``src/maxgate`` depend on each other in one direction only.

Each top-level module or package (``api``, ``domain``, ``store``, ``upstream``, ``runtime``, …)
is a node; an import of one from another, anywhere in its files (also under TYPE_CHECKING or
inside a function), is an edge. A cycle fails the test and names the packages in it.
"""

from __future__ import annotations

import ast
import graphlib
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "maxgate"


def package_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "maxgate" and len(parts) > 1:
                names.add(parts[1])
    return names


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        own = package_of(path)
        graph[own] |= imported(ast.parse(path.read_text(encoding="utf-8"))) - {own}
    return graph


def test_the_package_graph_has_no_cycle() -> None:
    try:
        order = list(graphlib.TopologicalSorter(package_graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"packages import each other in a cycle: {' -> '.join(exc.args[1])}")
    assert {"api", "domain", "store", "upstream", "runtime"} <= set(order)


@pytest.mark.parametrize(
    ("package", "never"),
    [
        ("domain", {"api", "runtime", "app", "cli", "upstream"}),  # the rules know no adapter
        ("store", {"domain", "api", "upstream", "runtime"}),
        ("upstream", {"api", "runtime", "app", "cli"}),
        ("runtime", {"api", "app", "cli"}),
        ("net", {"domain", "api", "store", "upstream", "runtime"}),
    ],
)
def test_arrows_point_inwards(package: str, never: set[str]) -> None:
    assert package_graph()[package] & never == set()


def test_the_walk_sees_a_cycle() -> None:
    # The check itself can fail: two packages importing each other are a cycle.
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())
    tree = ast.parse("from maxgate.api.routing import x\nimport maxgate.store.tables\n")
    assert imported(tree) == {"api", "store"}


def modules_imported(tree: ast.AST) -> set[str]:
    """Every module an import names in full (``import a.b`` and ``from a.b import c``: a.b)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


@pytest.mark.parametrize("package", ["domain", "api", "upstream"])
def test_sql_lives_in_the_store(package: str) -> None:
    """The store is a port: the domain, the HTTP layer and the messenger adapters write no SQL
    (no ``sqlalchemy``, no table of ``store.tables``); the queries are ``store/``'s."""
    offenders = []
    for path in sorted((SRC / package).rglob("*.py")):
        names = modules_imported(ast.parse(path.read_text(encoding="utf-8")))
        bad = {n for n in names if n.split(".")[0] == "sqlalchemy" or n == "maxgate.store.tables"}
        if bad:
            offenders.append(f"{path.relative_to(SRC)}: {sorted(bad)}")
    assert offenders == []


# The packages from the outside in: a package imports only packages of later layers. This is the
# diagram of docs/architecture.md ("Which package may import which"), checked.
LAYERS = [
    {"__main__"},  # python -m maxgate
    {"cli", "app"},  # entry points
    {"api"},  # the HTTP edge
    {"runtime"},  # builds the parts, picks the adapters
    {"upstream"},  # messenger adapters
    {"domain"},  # the rules and the ports they call
    # adapters of the domain's own ports; the client and the fake Bot API (standalone: they
    # import nothing of the gateway)
    {"store", "blobs", "net", "client", "fakemax"},
    {"settings"},
    {"errors", "space", "__init__"},
]


def test_every_arrow_points_inwards() -> None:
    layer_of = {package: n for n, layer in enumerate(LAYERS) for package in layer}
    graph = package_graph()
    assert set(graph) <= set(layer_of), f"packages in no layer: {set(graph) - set(layer_of)}"
    backwards = [
        f"{package} → {target}"
        for package, targets in graph.items()
        for target in targets
        if layer_of[target] <= layer_of[package]
    ]
    assert backwards == [], "imports against the layers: " + ", ".join(sorted(backwards))
