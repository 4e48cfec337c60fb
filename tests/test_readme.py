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
    assert section.strip() == feature_matrix().strip(), "run `python -m workbench matrix --write README.md`"


def test_write_matrix_replaces_only_the_section(tmp_path):
    from workbench.cli import main

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- feature-matrix:start -->\nold table\n<!-- feature-matrix:end -->\noutro\n")
    assert main(["matrix", "--write", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- feature-matrix:start -->\n") and text.endswith("<!-- feature-matrix:end -->\noutro\n")
    assert "old table" not in text and feature_matrix().strip() in text
    readme.write_text("no markers here\n")
    assert main(["matrix", "--write", str(readme)]) == 2  # refused with a message, the file untouched
    assert readme.read_text() == "no markers here\n"


def test_feature_matrix_says_why_a_backend_cannot_serve():
    matrix = feature_matrix()
    assert "| kernels | numpy | numba | cupy |" in matrix
    assert "| dense | ✓ | ✓ | — |" in matrix  # scaled_dot_product's row
    assert "- `dense`: cupy: no CuPy kernel for dense yet" in matrix.splitlines()
    assert not any(line.startswith("- `flash`:") for line in matrix.splitlines())  # the CuPy flash kernel serves
    assert "- `centroid_ot`: numba: no Numba kernel: after k-means" in matrix


def test_quick_start_runs():
    text = README.read_text()
    code = text.split("## Quick start")[1].split("```python")[1].split("```")[0]
    exec(compile(code, "README quick start", "exec"), {})


def test_docstrings_cite_only_documents_in_the_repository():
    """No citation of the upstream specification (not in the repository); every link to
    docs/upstream.md names a section that exists."""
    import re

    root = README.parent
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', (root / "docs" / "upstream.md").read_text()))
    cited = set()
    for path in [*root.glob("workbench/**/*.py"), *root.glob("kernels/**/*.py"), *root.glob("apps/*.py")]:
        text = path.read_text()
        assert not re.search(r"MECHANISMS §|spec §", text), f"{path}: cites a specification outside the repository"
        cited |= set(re.findall(r"docs/upstream\.md#([a-z0-9-]+)", text))
    assert cited and cited <= anchors, f"links to missing sections: {sorted(cited - anchors)}"
