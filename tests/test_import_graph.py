"""The arrows of docs/architecture.md ("Arrows"), checked on the source: no import circle
among resnorm's modules, and the layering rules that can be read off the imports.

Every ``import`` counts, at module level or inside a function (a lazy import is still an
arrow). ``from resnorm.x import y`` is an arrow to ``resnorm.x.y`` when that is a module,
else to ``resnorm.x``; a package is the module of its ``__init__.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import resnorm

SRC = Path(resnorm.__file__).resolve().parent.parent
# the third-party stack that `resnorm report` must never load (docs/architecture.md)
TRAINING_STACK = {"torch", "pytorch_lightning", "lightning", "lightning_fabric", "torchvision"}
# third-party packages the report loads only on the path that needs them, never at start-up
REPORT_LAZY = {"matplotlib", "optuna", "wandb", "wandb_workspaces", "pydantic"}


@dataclass
class Graph:
    edges: dict[str, set[str]] = field(default_factory=dict)  # module -> resnorm modules
    external: dict[str, set[str]] = field(default_factory=dict)  # module -> top-level names
    lazy: dict[str, set[str]] = field(default_factory=dict)  # imports inside functions


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Dotted name -> file, for every module of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _target(name: str, known: Iterable[str]) -> str | None:
    """The longest known module that ``name`` is or lies in."""
    known = set(known)
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return None


def _base(module: str, is_package: bool, level: int) -> str:
    """The package a relative import of ``level`` dots starts from."""
    parts = module.split(".")
    if not is_package:
        parts.pop()
    return ".".join(parts[: len(parts) - (level - 1)] if level > 1 else parts)


def _function_nodes(tree: ast.AST) -> set[int]:
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inside |= {id(n) for n in ast.walk(fn) if n is not fn}
    return inside


def import_graph(root: Path, package: str) -> Graph:
    """Parse every module of ``package`` (no import is executed) and collect its arrows."""
    files = module_names(root, package)
    g = Graph()
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        in_function = _function_nodes(tree)
        is_package = path.name == "__init__.py"
        internal, external, lazy = set(), set(), set()
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(p for p in (_base(module, is_package, node.level), base) if p)
                names = [f"{base}.{a.name}" if base else a.name for a in node.names]
                names = [n if n in files else base for n in names]
            else:
                continue
            for name in names:
                hit = _target(name, files) if name.split(".")[0] == package else None
                if hit is not None:
                    internal.add(hit)
                elif name.split(".")[0] != package:
                    external.add(name.split(".")[0])
                if id(node) in in_function:
                    lazy.add(hit or name.split(".")[0])
        internal.discard(module)
        g.edges[module], g.external[module], g.lazy[module] = internal, external, lazy
    return g


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted;
    a module importing itself is a component of one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, ()):
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def reachable(edges: dict[str, set[str]], start: Iterable[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo += edges.get(v, ())
    return seen


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _in(graph: Graph, package: str) -> list[str]:
    return [m for m in graph.edges if _under(m, package)]


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph(SRC, "resnorm")


# --- the checker checks: tiny graphs and a tiny package on disk -------------------------


def test_cycle_finder_on_synthetic_graphs():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    two = cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "x": {"a", "c"}})
    assert two == [["a", "b"], ["c", "d", "e"]]
    assert reachable({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}, ["a"]) == {"a", "b", "c"}


def test_graph_of_a_package_on_disk_finds_its_circles(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from toy.sub import b\nimport json\n",
        "sub/__init__.py": "",
        "sub/b.py": "from .c import helper\n",
        "sub/c.py": "def helper():\n    from toy import a  # lazy: an arrow all the same\n"
        "    import torch\n",
        "d.py": "from toy.sub.b import name\nfrom . import a\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    g = import_graph(tmp_path, "toy")
    assert g.edges["toy.a"] == {"toy.sub.b"} and g.external["toy.a"] == {"json"}
    assert g.edges["toy.sub.b"] == {"toy.sub.c"}
    assert g.edges["toy.d"] == {"toy.sub.b", "toy.a"}
    assert g.lazy["toy.sub.c"] == {"toy.a", "torch"}
    assert cycles(g.edges) == [["toy.a", "toy.sub.b", "toy.sub.c"]]


# --- the rules on resnorm itself ------------------------------------------------------


def test_no_import_circle_in_resnorm(graph):
    found = cycles(graph.edges)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_models_import_nothing_else_of_resnorm(graph):
    bad = {
        m: sorted(t for t in graph.edges[m] if not _under(t, "resnorm.models"))
        for m in _in(graph, "resnorm.models")
    }
    assert not {m: t for m, t in bad.items() if t}


def test_report_never_reaches_the_training_stack(graph):
    closure = reachable(graph.edges, _in(graph, "resnorm.report"))
    forbidden = ("resnorm.training", "resnorm.models", "resnorm.stability")
    assert not sorted(m for m in closure if any(_under(m, p) for p in forbidden))
    heavy = {m: sorted(graph.external[m] & TRAINING_STACK) for m in closure}
    assert not {m: x for m, x in heavy.items() if x}


def test_report_imports_inside_functions_are_only_the_lazy_third_party_ones(graph):
    """Within the report, a function-level import is kept only where it spares start-up:
    the CLI defers the whole pipeline (pandas, matplotlib) past `--help`, and a source or
    the workspace loads optuna / wandb / wandb_workspaces only when it is used."""
    lazy = {m: graph.lazy[m] for m in _in(graph, "resnorm.report") if graph.lazy[m]}
    cli = lazy.pop("resnorm.report.cli", set())
    assert all(_under(m, "resnorm.report") for m in cli), cli
    bad = {m: sorted(x - REPORT_LAZY) for m, x in lazy.items() if x - REPORT_LAZY}
    assert not bad


# the report's packages in the order of what flows through a report (its __init__
# docstring): each imports only the ones before it; `build` and `cli` may import all
REPORT_ORDER = ("sources", "analysis", "claims", "figures", "render")
# render renders a ReportData, the dataclass that build assembles: its one arrow forward
REPORT_EXCEPTIONS = {("render", "build")}


def report_package(module: str) -> str | None:
    """The report package a module lies in (``sources``, ..., ``build``, ``cli``)."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["resnorm", "report"] else None


def report_order_breaks(edges: dict[str, set[str]]) -> list[str]:
    """Arrows from a report package to one after it (or to build / cli), as 'a -> b'."""
    rank = {p: i for i, p in enumerate(REPORT_ORDER)}
    bad = []
    for module, targets in sorted(edges.items()):
        src = report_package(module)
        if src not in rank:  # build, cli, the package itself, or outside the report
            continue
        for target in sorted(targets):
            dst = report_package(target)
            if dst is None or dst == src or (src, dst) in REPORT_EXCEPTIONS:
                continue
            if dst not in rank or rank[dst] > rank[src]:
                bad.append(f"{module} -> {target}")
    return bad


def test_report_order_checker_on_a_synthetic_graph():
    r = "resnorm.report."
    edges = {
        r + "claims.x": {r + "analysis.stats", r + "sources.rows", r + "claims.needs"},
        r + "analysis.budget": {r + "claims.needs", r + "analysis.stats"},
        r + "sources.rows": {r + "build", "resnorm.outputs"},
        r + "render.html": {r + "build", r + "figures.base"},
        r + "build": {r + "render.html"},  # build and cli may import all
    }
    assert report_order_breaks(edges) == [
        "resnorm.report.analysis.budget -> resnorm.report.claims.needs",
        "resnorm.report.sources.rows -> resnorm.report.build",
    ]


def test_report_packages_import_only_the_ones_before_them(graph):
    """sources < analysis < claims < figures < render (src/resnorm/report/__init__.py)."""
    report = {m: graph.edges[m] for m in _in(graph, "resnorm.report")}
    assert not report_order_breaks(report)


def test_data_imports_neither_models_nor_training(graph):
    closure = reachable(graph.edges, _in(graph, "resnorm.data"))
    bad = [m for m in closure if _under(m, "resnorm.models") or _under(m, "resnorm.training")]
    assert not sorted(bad)


def test_the_document_these_rules_come_from_exists():
    cited = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
    assert "docs/architecture.md" in (__doc__ or "") and cited.is_file()
    assert "## Arrows" in cited.read_text()


def test_no_module_over_300_lines():
    long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long
