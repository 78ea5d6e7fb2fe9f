"""The README's Python example runs as written (on the embedded models), its Space section's deploy
steps name the files the app imports and the variables the code reads, and its layout tree names every
module (and only modules that exist)."""

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.slow
def test_python_example_runs(capsys):
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "32 steps; position 0 last changed in step" in printed
    diffusion_answer, ar_answer = printed.split("32 steps; position 0 last changed in step")
    assert diffusion_answer.strip() and ar_answer.split("\n", 1)[1].strip()
    assert "<|" not in printed and "<empty_output>" not in printed


# ---- the Space section's deploy steps, against the code

def space_section() -> str:
    text = README.read_text()
    return text[text.index("## On a Hugging Face Space"):text.index("## Python API")]


def local_imports(path: Path, root: Path) -> set[str]:
    """Top-level names of this repository's modules and packages that `path` imports."""
    tops = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        tops.update(n.split(".")[0] for n in names)
    return {t for t in tops if (root / f"{t}.py").exists() or (root / t / "__init__.py").exists()}


def test_the_deploy_steps_upload_everything_the_app_imports():
    root = README.parent
    uploaded = set(re.search(r"for path in ([^;]+); do", space_section()).group(1).split())
    needed, todo = set(), ["app"]
    while todo:
        top = todo.pop()
        needed.add(top)
        files = [root / f"{top}.py"] if (root / f"{top}.py").exists() else (root / top).rglob("*.py")
        todo += [t for f in files for t in local_imports(f, root) if t not in needed]
    assert needed | {"assets", "README.md"} <= {p.removesuffix(".py") for p in uploaded}
    assert all((root / p).exists() for p in uploaded)
    assert "hf upload --repo-type space <you>/<space> requirements-space.txt requirements.txt" in space_section()
    assert (root / "requirements-space.txt").exists()


def test_the_variables_the_deploy_steps_name_are_the_ones_the_code_reads():
    from generation import memory, presets
    from page import pickers

    named = set(re.findall(r"`(UNMASK_[A-Z_]+)", space_section()))
    code = "".join(p.read_text() for p in (README.parent / "app.py", *README.parent.glob("generation/*.py"),
                                            *README.parent.glob("page/*.py")))
    assert named == {presets.PROFILE_ENV, memory.GPU_MEMORY_ENV, "UNMASK_LOG", pickers.CUSTOM_MODELS_ENV}
    assert all(f'"{name}"' in code for name in named)


# ---- the layout tree, against the files

PACKAGES = ("generation", "page", "visualize", "training", "bench")


def tree_paths() -> set[str]:
    """The files the "## Layout" tree names: 'generation/' opens a folder, '  sampler.py' is a file in it."""
    text = README.read_text()
    tree = re.search(r"## Layout\n.*?```\n(.*?)```", text, re.S).group(1)
    paths, folder = set(), ""
    for line in tree.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not line.startswith(" "):
            folder = name if name.endswith("/") else ""
            if name.endswith(".py"):
                paths.add(name)
        elif name.endswith(".py") and line.startswith("  ") and not line.startswith("   "):
            paths.add(folder + name)
    return paths


def test_the_layout_tree_names_every_module():
    root = README.parent
    modules = {"app.py"} | {str(p.relative_to(root)) for package in PACKAGES for p in (root / package).glob("*.py")
                            if p.name != "__init__.py"}
    assert not modules - tree_paths(), f"README's ## Layout misses {sorted(modules - tree_paths())}"


def test_every_module_the_layout_tree_names_exists():
    missing = {p for p in tree_paths() if not (README.parent / p).exists()}
    assert not missing, f"README's ## Layout names files that do not exist: {sorted(missing)}"
