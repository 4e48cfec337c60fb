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


def _pins_from_pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    pins = {}
    for spec in specs:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.+]*)", spec.strip())
        assert m, f"pyproject.toml: dependency {spec!r} is not pinned with =="
        pins[m.group(1).lower()] = m.group(2)
    return pins


def _pins_from_environment() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"\s*-\s+([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.+]*)\s*$", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_environment_yml_mirrors_pyproject():
    assert _pins_from_pyproject() == _pins_from_environment()


def test_import_workbench_is_light():
    code = "import sys, workbench; print(json.dumps(sorted(m for m in ('numba', 'cupy', 'torch') if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
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
