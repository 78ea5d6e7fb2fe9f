"""The README's Python example runs as written (on the embedded models)."""

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
