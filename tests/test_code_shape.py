"""The package stays readable: no module over 400 lines, no function over 80 lines, no call with more
than 5 positional arguments (a longer list becomes keywords or a small options dataclass).

Not counted as calls with arguments: rows of literal data tables (every argument a literal, as in the
paper's tables), Rich's `table.add_row(...)` (one cell per column) and `nn.Sequential(...)` (its layers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rexbench"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_POSITIONAL_ARGS = 5
ROW_CALLS = ("add_row", "Sequential")


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def _is_data_row(call: ast.Call) -> bool:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
    return name in ROW_CALLS or all(_is_literal(arg) for arg in call.args)


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_short(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_functions_are_short_and_calls_take_few_positional_arguments(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                problems.append(f"{node.name} (line {node.lineno}) has {length} lines")
        elif (
            isinstance(node, ast.Call)
            and len(node.args) > MAX_POSITIONAL_ARGS
            and not _is_data_row(node)
        ):
            problems.append(f"call on line {node.lineno} has {len(node.args)} positional arguments")
    assert not problems, f"{_name(path)}: " + "; ".join(problems)
