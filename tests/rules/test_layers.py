"""rules/ is the policy language alone: it imports nothing from fastcalc/ or engine/, not even
late inside a function (the design card), so that the language can be read, loaded and
checked without the evaluators, and the evaluators depend on it and never the reverse."""

import ast
from pathlib import Path

import ecorules.rules

RULES = Path(ecorules.rules.__file__).parent
EVALUATORS = ("fastcalc", "engine")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement anywhere in ``tree`` names: absolute ones as written,
    relative ones as ``..NAME`` (level dots, then the module)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append((node.lineno, "." * node.level + (node.module or "")))
    return names


def test_rules_imports_nothing_from_the_evaluators():
    files = sorted(RULES.rglob("*.py"))
    assert len(files) > 10  # not vacuous: the package's modules were found
    found = [f"{path.relative_to(RULES)}:{line}: {name}"
             for path in files for line, name in _imported(ast.parse(path.read_text(encoding="utf-8")))
             if any(name.startswith((f"ecorules.{layer}", f"..{layer}")) for layer in EVALUATORS)]
    assert found == []


def test_the_check_finds_a_late_import():
    late = ast.parse("def f():\n    from ecorules.fastcalc._kernel import uscc_codes\n    from ..engine import x\n")
    assert [name for _line, name in _imported(late)] == ["ecorules.fastcalc._kernel", "..engine"]
