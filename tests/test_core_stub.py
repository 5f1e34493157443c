"""The shipped type stub describes the extension that was built."""

from __future__ import annotations

import ast
from pathlib import Path

from cnnvis import _core


def _stub_names() -> set[str]:
    stub = Path(_core.__file__).with_name("_core.pyi")
    tree = ast.parse(stub.read_text())
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_stub_lists_every_function_and_class_of_the_extension():
    built = {name for name in dir(_core) if callable(getattr(_core, name))}
    built = {name for name in built if not name.startswith("__")}
    assert _stub_names() == built
