"""Embedding files larger than memory, opened lazily: nothing is read until rows are asked for.

* ``.npy`` → a read-only :class:`numpy.memmap` ``(n, d)``: the header is checked as
  :func:`~workbench.data.load_embeddings` checks it (never a pickle, an object array or a damaged
  header), then the operating system pages rows in on demand;
* ``.parquet`` → a :mod:`dask.array` ``(n, d)`` float32 with one chunk per row group, each read
  with the loader's column rules (a list-of-numbers column, or the numeric columns; a label column
  is left out), so at most one row group is decoded at a time per task.

The arrays go straight to :func:`workbench.report.analyze_keys` (which reads only its samples and
one streaming pass for the centroid) and :func:`workbench.distributed.attend` (whose shards are the
chunks). No size cap applies: only what is read is held. Files on disk only (an upload is in
memory already).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from workbench.errors import DataError

__all__ = ["LAZY_FORMATS", "open_lazy"]

#: Extensions :func:`open_lazy` opens.
LAZY_FORMATS = (".npy", ".parquet")


def open_lazy(path, *, label_column: str | int | None = None):
    """The embeddings of the file at ``path`` as a lazy ``(n, d)`` array (see the module docstring).

    ``label_column`` (Parquet): the column to leave out as labels, by name or index, as for
    :func:`~workbench.data.load_embeddings`. Raises :class:`DataError` naming the file and the
    problem (no such file, wrong extension, pickle, not 2-D, not numeric, no rows, corrupt).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"path: expected the path of a file on the server, got {type(path).__name__}")
    p = Path(path)
    name = p.name
    if not p.is_file():
        raise DataError(f"{name}: no such file: {p}" if not p.exists() else f"{name}: not a regular file: {p}")
    ext = p.suffix.lower()
    if ext == ".npy":
        return _npy(p, name)
    if ext == ".parquet":
        return _parquet(p, name, label_column)
    raise DataError(f"{name}: wrong extension for lazy opening: {ext or 'none'!r}; expected one of "
                    f"{', '.join(LAZY_FORMATS)} (other formats: load_embeddings)")


def _npy(p: Path, name: str) -> np.memmap:
    from workbench.data.loaders import _npy_header

    with open(p, "rb") as f:
        shape, dtype = _npy_header(f, name, "the file")
    if len(shape) != 2:
        raise DataError(f"{name}: expected a 2-D array (n, d), got shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(f"{name}: zero rows: shape {shape}")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise DataError(f"{name}: non-numeric: dtype {dtype}; expected floats or integers")
    try:
        return np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # e.g. truncated data: the map would run past the end of the file
        raise DataError(f"{name}: corrupt: cannot map shape {shape} of {dtype} ({type(exc).__name__}: {exc})") from None


def _row_group(path: str, i: int, name: str, label_column, d: int | None = None) -> np.ndarray:
    """Row group ``i`` of the Parquet file → ``(rows, d)`` float32 by the loader's column rules
    (``d``: the width the first row group had, checked; None for the first)."""
    import pyarrow.parquet as pq

    from workbench.data.loaders import _from_table

    table = pq.ParquetFile(path).read_row_group(i)
    x = np.asarray(_from_table(table, name, label_column, row_word=f"row (in row group {i})")[0], np.float32)
    if d is not None and (x.ndim != 2 or x.shape[1] != d):
        raise DataError(f"{name}: row group {i} has vectors of shape {x.shape[1:]}, the first had ({d},)")
    return x


def _parquet(p: Path, name: str, label_column):
    import dask
    import dask.array as da
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(p).metadata
    except Exception as exc:
        raise DataError(f"{name}: corrupt: not a valid Parquet file ({type(exc).__name__}: {exc})") from None
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    if sum(groups) == 0:
        raise DataError(f"{name}: zero rows: the Parquet file has no rows")
    first = next(i for i, r in enumerate(groups) if r > 0)
    d = _row_group(str(p), first, name, label_column).shape[1]  # read now: its columns decide the layout
    chunks = [da.from_delayed(dask.delayed(_row_group, pure=True)(str(p), i, name, label_column, d),
                              shape=(r, d), dtype=np.float32) for i, r in enumerate(groups) if r > 0]
    return da.concatenate(chunks, axis=0)

