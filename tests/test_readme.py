"""The README's feature matrix is generated from the registry and must not drift."""
from pathlib import Path

from workbench.cli import feature_matrix

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = text.split("```")[1]
    assert "make serve" in first_block and "make test" in first_block


def test_feature_matrix_is_current():
    text = README.read_text()
    section = text.split("<!-- feature-matrix:start -->")[1].split("<!-- feature-matrix:end -->")[0]
    assert section.strip() == feature_matrix().strip(), "run `python -m workbench matrix` and paste it in README.md"


def test_quick_start_runs():
    text = README.read_text()
    code = text.split("## Quick start")[1].split("```python")[1].split("```")[0]
    exec(compile(code, "README quick start", "exec"), {})
