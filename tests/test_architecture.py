"""The project's shape: imports flow one way (files -> ingest -> store -> retrieval -> answering
-> Assistant -> front ends), with no cycles, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGES = ("rag", "ingest")
# Each layer may import only from its own layer and the ones before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rag.errors", "rag.settings", "rag.records"),
    ("rag.encoder_weights", "rag.onnx_export", "rag.onnx_embedder"),
    ("ingest.text", "ingest.plain_text", "ingest.wrapping", "ingest.loaders", "ingest.chunking",
     "ingest.uploads", "ingest.fingerprint"),
    ("rag.embeddings", "rag.store", "rag.process"),
    ("ingest.pipeline", "ingest"),
    ("rag.retrieval",),
    ("rag.llm",),
    ("rag.answering",),
    ("rag.assistant", "rag"),
    ("rag.evaluation", "rag.api", "rag.chat", "rag.slack_bot", "rag.cli", "rag.remote",
     "ingest.__main__"),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}
    assert "rag.assistant" in found and "ingest.pipeline" in found
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file, resolved to modules."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:
                    out.add(full)
                elif base in known:
                    out.add(base)
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(name: str) -> int:
    best, rank = -1, -1
    for number, layer in enumerate(LAYERS):
        for prefix in layer:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), number
    assert rank >= 0, f"{name} belongs to no layer: add it to LAYERS"
    return rank


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from rag.store import Store\n    import rag.cli\n")
    assert imports_of("x", source, {"rag.store", "rag.cli", "rag"}) == {"rag.store", "rag.cli"}


def test_there_are_no_import_cycles():
    assert cycles(import_graph()) == []


def test_imports_flow_from_ingest_to_the_front_ends_never_back():
    backwards = [f"{name} (layer {layer_of(name)}) imports {dep} (layer {layer_of(dep)})"
                 for name, deps in import_graph().items() for dep in sorted(deps)
                 if layer_of(dep) > layer_of(name)]
    assert backwards == []
