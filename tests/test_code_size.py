"""The size rule of the code-health issue, kept: no module of the package over 300 lines, and
no function body over 60 lines (signature and docstring not counted) unless its docstring
says why ("Long because ...")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kwsd"
MAX_MODULE_LINES = 300
MAX_BODY_LINES = 60


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if ast.get_docstring(node) is not None:
        body = body[1:] or body
    return node.end_lineno - body[0].lineno + 1


def test_no_module_is_over_300_lines():
    sizes = {p.relative_to(PACKAGE.parent): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert len(sizes) > 30
    assert {str(p): n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_is_over_60_lines_without_a_reason():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and body_lines(node) > MAX_BODY_LINES:
                if "Long because" not in (ast.get_docstring(node) or ""):
                    long[f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}"] = body_lines(node)
    assert long == {}
