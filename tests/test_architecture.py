"""The package's shape: imports flow one way, no cycles, small modules, lean searches."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from rag.index import Index
from rag.settings import Settings
from tests.conftest import ROOT
from tests.fakes import HashEmbedder

PACKAGE = ROOT / "rag"
# Lower layers never import higher ones; packages on one layer do not import each other.
LAYERS = {
    "rag.errors": 0,
    "rag.text": 0,
    "rag.paths": 0,
    "rag.formats": 0,
    "rag.settings": 1,
    "rag.types": 1,
    "rag.storage": 2,
    "rag.models": 2,
    "rag.ingest": 3,
    "rag.retrieval": 3,
    "rag.index": 4,
    "rag.answer": 5,
    "rag.server": 6,
    "rag.cli": 7,
}
MAX_LINES = 400


def _unit(module: str) -> str:
    """The layer unit a module belongs to: its package under rag, or the module itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports() -> dict[str, set[str]]:
    """Module -> the rag modules it imports anywhere in it (functions included)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag"):
                found.add(node.module)
                # `from rag.storage import writer` imports the module rag.storage.writer
                found.update(
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if _is_module(f"{node.module}.{a.name}")
                )
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("rag"))
        graph[name] = found - {name}
    return graph


def test_imports_flow_one_way_between_layers() -> None:
    wrong = []
    for module, imported in _imports().items():
        if module == "rag":
            continue  # the public names, imported lazily on first use
        here = _unit(module)
        for other in imported:
            there = _unit(other)
            if here == there:
                continue
            if LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} imports {other}")
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = _imports()
    modules = set(graph)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in modules or nxt == "rag":
                continue
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for m in sorted(modules - {"rag"}):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_no_module_is_over_the_line_budget() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")
    }
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc or "may import" in doc, init


def test_a_search_loads_no_document_reader(tmp_path: Path, corpus: Path) -> None:
    e = HashEmbedder()
    with Index.create(tmp_path / "idx", Settings(embedder=e.name), e) as index:
        index.add(corpus)
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from tests.fakes import HashEmbedder
from rag.models.registry import register_embedder
from rag.cli import cli
register_embedder("fake-hash", HashEmbedder)
try:
    cli(["search", "diffusion", "--index", {str(tmp_path / "idx")!r}], standalone_mode=False)
finally:
    heavy = ("rag.ingest.readers", "bs4", "pypdf", "docx", "pptx", "openpyxl", "ebooklib",
             "nbformat")
    loaded = [m for m in heavy if m in sys.modules]
    print("LOADED", loaded)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "diffusion" in out.stdout
    assert "LOADED []" in out.stdout


def test_docstring_examples_hold() -> None:
    import doctest
    import importlib

    for name in (
        "rag.text",
        "rag.types",
        "rag.formats",
        "rag.ingest.readers.parts",
        "rag.models.lazy",
        "rag.retrieval.fusion",
        "rag.storage.lexical",
        "rag.storage.removal",
        "rag.answer.shape",
        "rag.answer.compare",
        "rag.answer.define",
        "rag.models.batching",
        "rag.models.tokenizers",
        "rag.server.documents",
        "rag.ingest.readers.pdf",
    ):
        result = doctest.testmod(importlib.import_module(name))
        assert result.attempted > 0 and result.failed == 0, name
