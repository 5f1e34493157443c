"""The pipeline's import rule (docs/architecture.md), read from the source with ``ast``.

Every module of ``cnnvis`` belongs to one stage; a module imports only from its own stage or an
earlier one, never a later one, and no modules import each other in a circle. Function-level
imports count as much as top-level ones, and ``cnnvis.<name>`` reached through the lazy
attributes of ``cnnvis/__init__.py`` counts as an import of the module that defines ``name``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1] / "python" / "cnnvis"

#: The stages in pipeline order, each with the modules (dotted prefixes under ``cnnvis``) in it.
#: Keep in step with docs/architecture.md.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("io", ("_core", "io", "parallel")),
    ("layout", ("layout",)),
    ("models/data", ("models", "data")),
    ("graph", ("graph",)),
    ("record", ("record",)),
    ("training", ("training", "tracking")),
    ("analysis", ("analysis",)),
    ("interpret", ("interpret",)),
    ("session", ("session",)),
    ("scene", ("scene",)),
    ("render", ("render",)),
    ("export", ("export",)),
    ("viewer", ("viewer",)),
    ("commands", ("commands", "cli", "__main__")),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def stage_of(module: str) -> int | None:
    """Index in :data:`STAGES` of a ``cnnvis.*`` module (None for the package root)."""
    rest = module.split(".")[1:]
    if not rest:
        return None
    for i, (_, prefixes) in enumerate(STAGES):
        if rest[0] in prefixes:
            return i
    raise LookupError(f"{module} belongs to no stage: add it to STAGES and docs/architecture.md")


def _lazy_names() -> dict[str, str]:
    """``cnnvis.<name>`` -> the module that defines it, from ``_LAZY`` in the root package."""
    tree = ast.parse((ROOT / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return {}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` reads from."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[tuple[str, int]]:
    """The ``cnnvis`` modules ``module`` imports, anywhere in its body, with line numbers."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    lazy = _lazy_names()
    out: list[tuple[str, int]] = []
    imports_root = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "cnnvis":
                    imports_root = True
                elif alias.name.startswith("cnnvis."):
                    out.append((alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            if source != "cnnvis" and not source.startswith("cnnvis."):
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES or sub == "cnnvis._core":
                    out.append((sub, node.lineno))
                elif source == "cnnvis" and alias.name in lazy:
                    out.append((lazy[alias.name], node.lineno))
                elif source != "cnnvis":
                    out.append((source, node.lineno))
    if imports_root:  # ``import cnnvis`` then ``cnnvis.load(...)``: the lazy names it reaches
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "cnnvis"
                and node.attr in lazy
            ):
                out.append((lazy[node.attr], node.lineno))
    return [(m, line) for m, line in out if m != module]


def import_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for module in MODULES:
        g.add_node(module)
        for target, line in imports_of(module):
            g.add_edge(module, target, line=line)
    return g


def later_stage_imports() -> list[str]:
    """Every import of a later stage, as ``module (stage) -> target (stage), line N``."""
    bad = []
    for module in MODULES:
        own = stage_of(module)
        for target, line in imports_of(module):
            theirs = stage_of(target)
            if own is not None and theirs is not None and theirs > own:
                bad.append(
                    f"{module} ({STAGES[own][0]}) imports {target} ({STAGES[theirs][0]}), "
                    f"line {line}"
                )
    return sorted(set(bad))


def import_circles() -> list[list[str]]:
    """The groups of modules that import each other in a circle (strongly connected)."""
    return sorted(sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1)


def test_every_module_has_a_stage():
    for module in MODULES:
        stage_of(module)  # raises for a module outside every stage


def test_the_reader_sees_function_level_relative_and_lazy_imports(tmp_path, monkeypatch):
    """The rule's reader is tested on a module written for it: it must see each kind of import."""
    source = (
        "import cnnvis\n"
        "from . import colors\n"
        "def f():\n"
        "    from cnnvis.viewer import app\n"
        "    return cnnvis.load, app, colors\n"
    )
    monkeypatch.setitem(MODULES, "cnnvis.scene._architecture_probe", tmp_path / "probe.py")
    (tmp_path / "probe.py").write_text(source)
    found = {m for m, _ in imports_of("cnnvis.scene._architecture_probe")}
    assert {"cnnvis.scene.colors", "cnnvis.viewer.app", "cnnvis.session"} <= found
    assert stage_of("cnnvis.viewer.app") > stage_of("cnnvis.scene._architecture_probe")


def test_no_stage_imports_a_later_one():
    bad = later_stage_imports()
    assert not bad, "imports against the pipeline:\n" + "\n".join(bad)


def test_no_import_circles():
    circles = import_circles()
    assert not circles, "modules importing each other in a circle:\n" + "\n".join(
        " <-> ".join(c) for c in circles
    )


if (
    __name__ == "__main__"
):  # pragma: no cover - a report for people: python tests/test_architecture.py
    for line in later_stage_imports():
        print(line)
    for c in import_circles():
        print("circle:", " <-> ".join(c))
    pytest.main([__file__, "-q"])
