"""The :class:`Dataset` record: validated embeddings ``x (n, d)`` float32 with optional labels and texts.

Every loader and demo returns one; :func:`validate_embeddings` is the single place where an
array is checked (numeric, 2-D, at least one row, ``d ≥ 2``, finite) and every failure is a
:class:`~workbench.errors.DataError` whose message names the problem and where it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from workbench.errors import DataError

__all__ = ["Dataset", "validate_embeddings", "validate_edge_index", "labels_or_texts", "check_pair"]

#: How many offending rows a message lists before "…".
_SHOW = 5


def _rows_text(rows: np.ndarray, line_of: Callable[[int], int] | None) -> str:
    shown = [str(int(r)) if line_of is None else f"{int(r)} (line {line_of(int(r))})" for r in rows[:_SHOW]]
    return ", ".join(shown) + (", …" if len(rows) > _SHOW else "")


def validate_embeddings(a, name: str = "x", *, line_of: Callable[[int], int] | None = None) -> np.ndarray:
    """``a`` as a C-contiguous float32 ``(n, d)`` array, or a :class:`DataError` naming the problem.

    Checks, in order: numeric dtype (never objects: pickles are not loaded), exactly 2-D, at least
    one row, at least two columns (``d = 1`` is "one dimension": attention needs vectors), finite
    values (the message counts NaN and ±inf and lists the first rows, 0-based; ``line_of(row)``
    adds the file line), and values that stay finite in float32. Rows and columns are 0-based.
    """
    a = np.asarray(a)
    kind = a.dtype.kind
    if kind == "O":
        raise DataError(f"{name}: non-numeric: the array holds Python objects (dtype object); "
                        "pickles are never loaded — save a numeric array")
    if kind == "c":
        raise DataError(f"{name}: non-numeric: complex values (dtype {a.dtype}); expected real numbers")
    if kind not in "biuf":
        raise DataError(f"{name}: non-numeric: dtype {a.dtype}; expected a real numeric array")
    if a.ndim < 2:
        raise DataError(f"{name}: one dimension: got a {a.ndim}-D array of shape {a.shape}; expected a 2-D "
                        "array (n, d) of n embeddings (reshape a single vector to (1, d))")
    if a.ndim > 2:
        raise DataError(f"{name}: expected a 2-D array (n, d) of n embeddings, got {a.ndim}-D shape {a.shape}; "
                        "flatten the leading axes first")
    n, d = a.shape
    if n == 0:
        raise DataError(f"{name}: zero rows: the array has shape {a.shape}; expected at least one embedding")
    if d == 0:
        raise DataError(f"{name}: zero columns: the array has shape {a.shape}; expected d >= 2 features")
    if d == 1:
        raise DataError(f"{name}: one dimension: the embeddings have d=1 (shape {a.shape}); attention needs "
                        "vectors of at least 2 features")
    if kind == "f":
        bad = ~np.isfinite(a)
        count = int(bad.sum())
        if count:
            nan = int(np.isnan(a).sum())
            r, c = (int(i) for i in np.argwhere(bad)[0])
            rows = np.flatnonzero(bad.any(axis=1))
            where = f"row {r}, column {c}" + ("" if line_of is None else f" (line {line_of(r)})")
            raise DataError(
                f"{name}: NaN/inf: {count} non-finite value{'s' * (count > 1)} ({nan} NaN, {count - nan} inf) "
                f"in {len(rows)} row{'s' * (len(rows) > 1)}; first at {where}; rows (0-based): "
                f"{_rows_text(rows, line_of)}")
    with np.errstate(over="ignore"):
        x = np.ascontiguousarray(a, dtype=np.float32)
    if kind == "f" and a.dtype.itemsize > 4:
        over = ~np.isfinite(x)
        if over.any():
            r, c = (int(i) for i in np.argwhere(over)[0])
            raise DataError(f"{name}: {int(over.sum())} values exceed the float32 range (|x| > 3.4e38), first "
                            f"at row {r}, column {c} ({a[r, c]!r}); rescale the data")
    return x


def validate_edge_index(a, n: int, name: str = "edge_index") -> np.ndarray:
    """``a`` as a read-only int64 ``(2, E)`` array of node indices in ``[0, n)``, or a :class:`DataError`."""
    e = np.asarray(a)
    if e.ndim != 2 or e.shape[0] != 2:
        raise DataError(f"{name}: expected shape (2, E) (PyG's source row and target row), got {e.shape}")
    if e.size and e.dtype.kind not in "iu":
        raise DataError(f"{name}: expected integer node indices, got dtype {e.dtype}")
    e = np.array(e, dtype=np.int64)
    if e.size and (e.min() < 0 or e.max() >= n):
        bad = int(e.min()) if e.min() < 0 else int(e.max())
        raise DataError(f"{name}: node indices must lie in [0, {n}) (one node per row), got {bad}")
    e.setflags(write=False)
    return e


def labels_or_texts(values: Sequence, n: int) -> tuple[np.ndarray | None, list | None]:
    """Split one column of per-row strings into categorical ``labels`` or free ``texts``.

    A column whose distinct values number at most ``n // 2`` (each value on average on two rows or
    more, as class names are) gives ``labels`` (an array, for colouring); otherwise ``texts`` (a
    list, e.g. one word per row, for hover). The heuristic is documented where it is used.
    """
    vals = ["" if v is None else str(v) for v in values]
    if len(vals) != n:
        raise DataError(f"labels: expected {n} values (one per row), got {len(vals)}")
    if len(set(vals)) <= max(1, n // 2):
        return np.asarray(vals), None
    return None, vals


@dataclass(frozen=True, eq=False)
class Dataset:
    """Embeddings ready for attention: ``x (n, d)`` float32 (finite, ``d ≥ 2``) plus what came with them.

    * ``labels (n,)`` class of each row (ints or strings) or None — for colouring and query selection;
    * ``texts`` list of ``n`` strings (a word or a sentence per row) or None — for hover;
    * ``name`` a short display name; ``source`` where it came from (a path, ``"upload"``, ``"demo:…"``);
    * ``notes`` what the loader decided on the user's behalf (header detected, label column chosen…);
    * ``edge_index (2, E)`` int64 or None — a graph that came with the data (PyG convention: edge
      ``j → i`` is column ``[j, i]``; e.g. the citation links of the rows), used by graph mechanisms
      instead of a kNN graph.
    """

    x: np.ndarray
    labels: np.ndarray | None = None
    texts: list | None = None
    name: str = "data"
    source: str = ""
    notes: tuple = field(default_factory=tuple)
    edge_index: np.ndarray | None = None

    def __post_init__(self):
        x = validate_embeddings(self.x, self.name)
        object.__setattr__(self, "x", x)
        n = x.shape[0]
        if self.labels is not None:
            lab = np.asarray(self.labels)
            if lab.dtype.kind == "O":
                lab = lab.astype(str)
            if lab.shape != (n,):
                raise DataError(f"labels: expected {n} labels (one per row of x), got shape {lab.shape}")
            object.__setattr__(self, "labels", lab)
        if self.texts is not None:
            texts = [str(t) for t in self.texts]
            if len(texts) != n:
                raise DataError(f"texts: expected {n} texts (one per row of x), got {len(texts)}")
            object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "notes", tuple(self.notes))
        if self.edge_index is not None:
            object.__setattr__(self, "edge_index", validate_edge_index(self.edge_index, n))

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def dim(self) -> int:
        return int(self.x.shape[1])

    def replace(self, **changes) -> "Dataset":
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def subset(self, index) -> "Dataset":
        """The rows ``index`` (an int array or a boolean mask), labels and texts alongside."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        edges = None
        if self.edge_index is not None:  # the edges between kept rows, renumbered
            new = np.full(self.n, -1, np.int64)
            new[idx] = np.arange(idx.size)
            e = new[self.edge_index]
            edges = e[:, (e >= 0).all(axis=0)]
        return replace(self, x=self.x[idx], labels=None if self.labels is None else self.labels[idx],
                       texts=None if self.texts is None else [self.texts[i] for i in idx], edge_index=edges)


def _shape_of(a, name: str) -> tuple:
    x = a.x if isinstance(a, Dataset) else np.asarray(a)
    if x.ndim != 2:
        raise DataError(f"{name}: expected a 2-D array (n, d), got shape {x.shape}")
    return x.shape


def check_pair(keys, values, *, queries=None) -> None:
    """Raise :class:`DataError` unless ``keys`` and ``values`` (and ``queries``) fit together.

    Attention needs one value per key (``values`` has as many rows as ``keys``) and queries in
    the key space (``queries`` has the keys' dimension ``d``); ``values`` may have any ``dv``.
    Arguments are :class:`Dataset` objects or 2-D arrays.
    """
    nk, dk = _shape_of(keys, "keys")
    nv, dv = _shape_of(values, "values")
    if nk != nv:
        raise DataError(f"values: mismatched key/value dimensions: {nv} value rows for {nk} keys "
                        f"(keys {(nk, dk)}, values {(nv, dv)}); expected one value per key")
    if queries is not None:
        nq, dq = _shape_of(queries, "queries")
        if dq != dk:
            raise DataError(f"keys: mismatched query/key dimensions: queries have d={dq}, keys d={dk} "
                            f"(queries {(nq, dq)}, keys {(nk, dk)}); expected the same d")
