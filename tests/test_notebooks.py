"""The tutorial notebooks: all twelve exist, every mechanism family is taught, outputs are stored.

The notebooks themselves run under nbval (``notebooks/conftest.py``); these tests check what
nbval cannot: that each expected notebook is there, that every registered mechanism family has a
notebook that uses one of its mechanisms (a registry name as a string literal in a code cell, e.g.
``make("hyperbolic")`` or ``for name in ["flash", "linear"]``), and that every notebook has the
tutorial's shape (title, formula, HoloViews plots, "What you learned") and was executed top to
bottom before it was committed (nbval compares against the stored outputs).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import workbench

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: The tutorials in reading order (the twelve of issue 6, then real models).
EXPECTED = [
    "01_quickstart",
    "02_geometry_aware_transformer",
    "03_adaptive_attention_unified_report",
    "04_information_bottleneck",
    "05_multiscale_diffusion",
    "06_natural_gradient",
    "07_graph_attention_on_hnsw",
    "08_optimal_transport",
    "09_topology_gating",
    "10_flash_and_linear_at_scale",
    "11_gpu_kernels",
    "12_build_your_own_mechanism",
    "13_attention_of_a_real_transformer",
]


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _markdown(nb: dict) -> list[str]:
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _python(source: str) -> str:
    """A code cell without its IPython-only lines (``%magic``, ``!shell``)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def string_literals(nb: dict) -> set[str]:
    """Every string constant in the notebook's code cells (parsed, not grepped: comments don't count)."""
    found: set[str] = set()
    for source in _code(nb):
        tree = ast.parse(_python(source))
        found |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return found


def mechanisms_used(nb: dict) -> set[str]:
    """Registered mechanism names the notebook's code names as string literals."""
    return string_literals(nb) & set(workbench.registry)


def _existing() -> dict[str, dict]:
    return {p.stem: _load(p) for p in sorted(NOTEBOOKS.glob("*.ipynb"))}


# Families as registered at collection time; names starting with "_" are test-only registrations.
FAMILIES = sorted({info.family for name, info in workbench.registry.items() if not name.startswith("_")})


@pytest.mark.parametrize("name", EXPECTED)
def test_expected_notebook_exists(name):
    assert (NOTEBOOKS / f"{name}.ipynb").is_file(), f"notebooks/{name}.ipynb is missing"


def test_no_unexpected_notebooks():
    assert set(_existing()) <= set(EXPECTED), "a notebook outside the list of issue 6: add it to EXPECTED"


def _users(family: str) -> dict[str, list[str]]:
    """Notebooks using a mechanism of ``family``, with the mechanisms they use."""
    members = {n for n, info in workbench.registry.items() if info.family == family}
    users = {stem: sorted(mechanisms_used(nb) & members) for stem, nb in _existing().items()}
    return {stem: used for stem, used in users.items() if used}


@pytest.mark.parametrize("family", FAMILIES)
def test_every_mechanism_family_has_a_notebook(family):
    members = sorted(n for n, info in workbench.registry.items() if info.family == family)
    assert _users(family), f"no notebook uses a mechanism of family {family!r} ({', '.join(members)})"


def test_mechanism_detection_reads_code_not_comments_or_markdown():
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["`make(\"flash\")`"]},
        {"cell_type": "code", "source": ["# make(\"linear\")\n", "%time x = 1\n", "m = make('hyperbolic', c=1.0)\n"]},
        {"cell_type": "code", "source": ["for n in ['multi_head', 'not_a_mechanism']:\n", "    pass\n"]},
    ]}
    assert mechanisms_used(nb) == {"hyperbolic", "multi_head"}


@pytest.fixture(scope="module")
def notebooks() -> dict[str, dict]:
    return _existing()


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_a_tutorial(name, notebooks):
    nb = notebooks[name]
    md = _markdown(nb)
    assert nb["cells"][0]["cell_type"] == "markdown" and md[0].lstrip().startswith("# "), "starts with a title"
    assert any("$" in m for m in md), "states its formula in Markdown LaTeX"
    assert re.search(r"^#+ What you learned", md[-1], re.M), "ends with a 'What you learned' section"
    code = "\n".join(_code(nb))
    assert "import holoviews as hv" in code and 'hv.extension("bokeh"' in code, "plots with HoloViews (bokeh)"
    assert re.search(r"\bhv\.(HeatMap|Image|Curve|Scatter|Points|Bars|Overlay|Layout|Path|Graph|Spread)\b", code)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_outputs_are_stored_from_one_clean_run(name, notebooks):
    cells = [c for c in notebooks[name]["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "run top to bottom in a fresh kernel, then save"
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"stored error output: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    assert any(c.get("outputs") for c in cells)


@pytest.mark.parametrize("name", EXPECTED)
def test_plot_cells_ignore_only_their_own_output(name, notebooks):
    """``# NBVAL_IGNORE_OUTPUT`` only on plot cells or with a ``# why: ...`` line; some cell is compared."""
    checked = 0
    for c in notebooks[name]["cells"]:
        if c["cell_type"] != "code":
            continue
        src = "".join(c["source"])
        if "NBVAL_IGNORE_OUTPUT" in src:
            plot = any("application/vnd.holoviews_exec.v0+json" in o.get("data", {}) or
                       "application/vnd.holoviews_load.v0+json" in o.get("data", {}) for o in c.get("outputs", []))
            why = re.search(r"^\s*# why: \S", src, re.M)
            assert plot or why, f"cell ignores its output without a plot and without a '# why: ...' line:\n{src[:200]}"
        elif c.get("outputs"):
            checked += 1
    assert checked >= 1, "at least one cell's output is compared by nbval"
