"""Static checks over the package's source that ruff does not make.

A module that defines the same function or class twice keeps only the second one; when
the name is used between the two definitions ruff's F811 stays silent, and the first
callers get the wrong function at run time (the CuPy backend shipped two ``_launch``
functions this way). pylint calls this ``function-redefined``; this is the same check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "minicnn"

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_overload_or_accessor(node: ast.AST) -> bool:
    """``@typing.overload`` stubs and ``@name.setter``/``.deleter`` legitimately reuse a name."""
    for d in getattr(node, "decorator_list", []):
        name = d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", "")
        if name in ("overload", "setter", "deleter", "getter", "register"):
            return True
    return False


def redefinitions(source: str, filename: str = "<module>") -> list[str]:
    """``"file:line: name redefines line N"`` for each function/class defined twice in one scope.

    The scopes are the module body and each class body (recursively); definitions under
    ``if``/``try`` are alternatives chosen at run time and are not counted.
    """
    problems = []

    def scan(body: list[ast.stmt]) -> None:
        seen: dict[str, int] = {}
        for node in body:
            if not isinstance(node, _DEFINITIONS):
                continue
            if node.name in seen and not _is_overload_or_accessor(node):
                problems.append(f"{filename}:{node.lineno}: {node.name!r} redefines the "
                                f"definition on line {seen[node.name]}")
            seen[node.name] = node.lineno
            if isinstance(node, ast.ClassDef):
                scan(node.body)

    scan(ast.parse(source, filename=filename).body)
    return problems


def test_no_module_or_class_defines_a_name_twice():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += redefinitions(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    assert not problems, "redefined functions/classes:\n" + "\n".join(problems)


def test_the_check_catches_a_redefined_function_a_method_and_a_class():
    source = (
        "def _launch(kernel, n, args):\n    pass\n\n"
        "def pool(x):\n    return _launch(x, 1, ())\n\n"  # used in between: ruff's F811 is silent
        "def _launch(name, dtype, total, args):\n    pass\n\n"
        "class A:\n    def f(self):\n        pass\n    def f(self):\n        pass\n\n"
        "class A:\n    pass\n"
    )
    found = redefinitions(source, "synthetic.py")
    assert found == [
        "synthetic.py:7: '_launch' redefines the definition on line 1",
        "synthetic.py:13: 'f' redefines the definition on line 11",
        "synthetic.py:16: 'A' redefines the definition on line 10",
    ]


@pytest.mark.parametrize("source", [
    "try:\n    def f():\n        pass\nexcept ImportError:\n    def f():\n        pass\n",
    "class A:\n    @property\n    def x(self):\n        return 1\n"
    "    @x.setter\n    def x(self, v):\n        pass\n",
    "def f():\n    pass\n\ndef g():\n    def f():\n        pass\n",
])
def test_the_check_allows_alternatives_accessors_and_nested_scopes(source):
    assert redefinitions(source) == []
