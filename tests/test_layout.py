"""The layout's promises: no import circle in generation/, no late imports, visualize/ without torch."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _relative_imports(path: Path) -> tuple[set[str], list[str]]:
    """(sibling modules imported at top level, sibling modules imported anywhere else)."""
    tree = ast.parse(path.read_text())
    top, late = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            (top.add(node.module.split(".")[0]) if node in tree.body else late.append(node.module))
    return top, late


def test_generation_has_no_import_circle_and_no_late_sibling_import():
    graph, late = {}, {}
    for path in (ROOT / "generation").glob("*.py"):
        graph[path.stem], found = _relative_imports(path)
        if found:
            late[path.stem] = found
    assert late == {}

    def reaches(start, target, seen=()):
        return any(d == target or (d not in seen and reaches(d, target, (*seen, d))) for d in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m)] == []


def test_visualize_imports_neither_torch_nor_transformers():
    code = ("import sys, visualize.canvas, visualize.charts, visualize.export, visualize.sweep, visualize.tokens; "
            "assert not {'torch', 'transformers'} & set(sys.modules), sorted({'torch', 'transformers'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
