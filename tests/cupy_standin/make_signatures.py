"""Write ``cupy_signatures.json`` (next to this file) from a real CuPy, for the stand-in in ``cupy/``.

Run ``python tests/cupy_standin/make_signatures.py`` where CuPy is installed (``pip install cupy-cuda13x``;
it imports without a GPU). ``--output PATH`` writes elsewhere (to compare with the committed file).

The file has three sections:

- ``funcs``: every callable of ``cupy``, ``cupy.linalg``, ``cupy.random`` and ``cupy.fft`` that is not a
  ufunc (keys ``"where"``, ``"linalg.norm"``, …) → its parameters as ``[name, kind, has_default]``
  (``kind``: :class:`inspect.Parameter`'s, 0 positional only, 1 positional or keyword, 2 ``*args``,
  3 keyword only, 4 ``**kwargs``), or null where :func:`inspect.signature` cannot read it;
- ``ufuncs``: the names of CuPy's ufuncs (they take ``out``, ``dtype`` and ``casting`` only);
- ``methods``: every attribute of ``cupy.ndarray`` → its parameters, or null (most are Cython methods
  without a signature: the stand-in writes theirs from ``cupy/_core/core.pyx``).
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODULES = ("", "linalg", "random", "fft")


def parameters(fn):
    """``[[name, kind, has_default], …]`` of ``fn``, or None where inspect cannot read its signature."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return [[p.name, int(p.kind), p.default is not inspect.Parameter.empty] for p in sig.parameters.values()]


def signatures(cupy) -> dict:
    funcs, ufuncs = {}, []
    for prefix in MODULES:
        module = getattr(cupy, prefix) if prefix else cupy
        for name in dir(module):
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            key = f"{prefix}.{name}" if prefix else name
            if isinstance(obj, cupy.ufunc) or type(obj).__name__ == "ufunc":
                ufuncs.append(key)
            elif callable(obj):
                funcs[key] = parameters(obj)
    methods = {name: parameters(getattr(cupy.ndarray, name)) for name in dir(cupy.ndarray) if not name.startswith("__")}
    return {"funcs": funcs, "ufuncs": ufuncs, "methods": methods}


def dumps(data: dict) -> str:
    """JSON with one entry per line (ufunc names ten a line), for readable diffs."""
    sections = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
            body = "{\n" + ",\n".join(rows) + "\n }"
        else:
            rows = ["  " + ", ".join(json.dumps(v) for v in value[i:i + 10]) for i in range(0, len(value), 10)]
            body = "[\n" + ",\n".join(rows) + "\n ]"
        sections.append(f" {json.dumps(key)}: {body}")
    return "{\n" + ",\n".join(sections) + "\n}\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=HERE / "cupy_signatures.json")
    args = parser.parse_args(argv)
    # run as a script, this folder is sys.path[0]: it holds the stand-in, which must not answer `import cupy`
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    try:
        import cupy
    except ImportError as exc:
        raise SystemExit(f"CuPy is not installed here ({exc}): pip install cupy-cuda13x (no GPU needed)") from None
    if HERE in Path(cupy.__file__).resolve().parents:
        raise SystemExit(f"imported the stand-in ({cupy.__file__}), not CuPy: run this where CuPy is installed")
    data = signatures(cupy)
    args.output.write_text(dumps(data))
    print(f"{args.output}: CuPy {cupy.__version__}, {len(data['funcs'])} functions, {len(data['ufuncs'])} ufuncs, "
          f"{len(data['methods'])} ndarray attributes")


if __name__ == "__main__":
    main()
