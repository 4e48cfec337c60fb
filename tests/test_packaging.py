"""The install surface: pinned dependencies mirrored, light imports, cached kernels."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list:
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return [Requirement(s) for s in specs]


def _pins(path: Path, pattern: str) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(pattern, line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def _pins_from_constraints() -> dict[str, str]:
    return _pins(ROOT / "constraints.txt", r"([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.+]*)\s*$")


def _pins_from_environment() -> dict[str, str]:
    return _pins(ROOT / "environment.yml", r"\s*-\s+([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.+]*)\s*$")


def test_pyproject_declares_compatible_ranges_that_the_pins_satisfy():
    """The library installs beside other packages (ranges, never ==); the tested versions are
    pinned in constraints.txt (which make installs) and lie inside those ranges."""
    pins = _pins_from_constraints()
    for req in _requirements():
        ops = {s.operator for s in req.specifier}
        assert ops and "==" not in ops and "<" in ops, f"pyproject.toml: {req} is not a bounded range"
        name = req.name.lower()
        assert name in pins, f"constraints.txt: no pin for {name}"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"
    assert set(pins) == {r.name.lower() for r in _requirements()}, "constraints.txt pins a package nothing needs"


def test_environment_yml_mirrors_the_pins():
    assert _pins_from_environment() == _pins_from_constraints()


def test_make_installs_with_the_pins():
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "install" in line and "-e " in line]
    assert installs and all("$(PINS)" in line for line in installs)
    assert "PINS := -c constraints.txt" in makefile


def test_import_workbench_is_light():
    code = "import sys, workbench; print(json.dumps(sorted(m for m in ('numba', 'cupy', 'torch') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_workbench_models_imports_no_model_library_until_a_model_is_loaded():
    """The ``models`` extra is optional: importing :mod:`workbench.models` (and the dashboard's Model
    tab) reads nothing of PyTorch or transformers until :func:`workbench.models.load_model`."""
    code = ("import sys, json, workbench.models, apps.model_view; "
            "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(out.stdout) == []


_CACHE_PROBE = """
import json, numpy as np, kernels
from kernels.numba import linear
q = np.ones((1, 4, 3), np.float32)
kernels.linear_attention(q, q, q, backend="numba")
s = linear._linear.stats
print(json.dumps({"hits": sum(s.cache_hits.values()), "misses": sum(s.cache_misses.values())}))
"""


def test_numba_kernels_compile_once_and_are_cached_across_processes(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [json.loads(subprocess.run([sys.executable, "-c", _CACHE_PROBE], capture_output=True, text=True,
                                      check=True, env=env).stdout) for _ in range(2)]
    assert runs[0]["misses"] >= 1 and runs[0]["hits"] == 0  # first process compiles
    assert runs[1]["hits"] >= 1 and runs[1]["misses"] == 0  # second loads from the cache
