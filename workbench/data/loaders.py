"""Embedding files (a path on the server or the bytes of an upload) → a validated :class:`Dataset`.

Formats, by extension (case-insensitive):

* ``.npy`` — one numeric 2-D array, read with ``allow_pickle=False`` always (a pickle, or an
  object array, is refused: pickles are never loaded);
* ``.npz`` — the array named ``x``/``X``/``embeddings``/``embedding``/``emb``/``vectors``/``data``,
  else the first numeric 2-D member; optional ``labels``/``label``/``y``/``target(s)`` and
  ``texts``/``words``/``tokens``/``names`` members, and an ``edge_index`` member ``(2, E)`` for a
  graph over the rows (PyG convention, e.g. citation links);
* ``.csv`` / ``.tsv`` — numeric columns, with or without a header row (detected: a header is a
  first row with text where the second row has numbers); one optional label/text column: the
  ``label_column`` argument (name or 0-based index), else a column named ``label``/``labels``/
  ``class``/``target``/``y``, else the single non-numeric column;
* ``.parquet`` — the same column rules, and a list-of-numbers column (``embedding`` as in many
  published data sets) holds the vectors;
* ``.txt`` / ``.vec`` — word2vec/GloVe text: ``word f1 … fd`` per line, with an optional word2vec
  header line ``n d`` (a plain numeric matrix without words is read too);
* ``.safetensors`` — via the ``safetensors`` package's NumPy API, members chosen as for ``.npz``.

The size is checked before anything is parsed: at most ``max_bytes`` (default: the environment
variable ``WORKBENCH_MAX_UPLOAD_MB`` in MiB, else 200 MiB; for ``.npz`` and ``.parquet`` the
uncompressed size counts too). Every bad file raises :class:`~workbench.errors.DataError` with a
message that starts with the file name and names the problem (wrong extension, corrupt, ragged
rows, non-numeric, NaN/inf with counts and rows, zero rows, one dimension, too large, pickle).
A label column with few distinct values (at most ``n // 2``) becomes ``labels``; one with many
(e.g. one word per row) becomes ``texts`` (see :func:`~workbench.data.dataset.labels_or_texts`).
"""
from __future__ import annotations

import csv
import io
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from workbench.data.dataset import Dataset, labels_or_texts, validate_embeddings
from workbench.errors import ConfigurationError, DataError

__all__ = ["DEFAULT_MAX_BYTES", "ENV_MAX_UPLOAD_MB", "FORMATS", "load_embeddings", "max_upload_bytes"]

MIB = 1 << 20
#: Default cap on a file's size (200 MiB) when ``WORKBENCH_MAX_UPLOAD_MB`` is not set.
DEFAULT_MAX_BYTES = 200 * MIB
#: Environment variable with the size cap in MiB (a positive number, e.g. ``500`` or ``0.5``).
ENV_MAX_UPLOAD_MB = "WORKBENCH_MAX_UPLOAD_MB"
#: Environment variable: the size cap (MiB) of files read from the server's own disk.
ENV_MAX_PATH_MB = "WORKBENCH_MAX_PATH_MB"
#: How to raise a size limit, in the errors that decoding checks raise for uploads and files alike.
_RAISE = f"raise it with {ENV_MAX_UPLOAD_MB} for uploads, {ENV_MAX_PATH_MB} for files on the server"

#: Extension → format name.
FORMATS = {
    ".npy": "npy", ".npz": "npz", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
    ".txt": "word2vec", ".vec": "word2vec", ".safetensors": "safetensors",
}

_X_NAMES = ("x", "X", "embeddings", "embedding", "emb", "vectors", "data")
_LABEL_NAMES = ("labels", "label", "y", "targets", "target", "classes", "class")
_TEXT_NAMES = ("texts", "text", "words", "word", "tokens", "names")
#: Member of ``.npz`` / ``.safetensors`` files holding a graph over the rows (PyG ``(2, E)``).
_EDGE_NAME = "edge_index"
_NPY_MAGIC = b"\x93NUMPY"


def max_upload_bytes() -> int:
    """The size cap in bytes: ``WORKBENCH_MAX_UPLOAD_MB`` (MiB, read at each call) or 200 MiB."""
    env = _env_mib(ENV_MAX_UPLOAD_MB)
    return DEFAULT_MAX_BYTES if env is None else env


def _env_mib(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not (np.isfinite(mb) and mb > 0):
        raise ConfigurationError(f"{name}: expected a positive number of MiB, got {raw!r}")
    return int(mb * MIB)


def max_path_bytes() -> int:
    """The size cap in bytes of a file read from the server's disk (not an upload, whose cap
    :func:`max_upload_bytes` stays): ``WORKBENCH_MAX_PATH_MB``, or a quarter of the machine's memory
    (a file decodes to at most about twice its size as float32 plus its float64 checks), and never
    below the upload cap."""
    env = _env_mib(ENV_MAX_PATH_MB)
    if env is not None:
        return env
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: the upload cap
        return max_upload_bytes()
    return max(max_upload_bytes(), int(total) // 4)


def load_embeddings(source, *, filename: str | None = None, max_bytes: int | None = None,
                    label_column: str | int | None = None) -> Dataset:
    """Read embeddings from ``source`` (a path, or the ``bytes`` of an upload with its ``filename``).

    The format comes from the extension of ``filename`` (or of the path); ``max_bytes`` caps the
    size (None: :func:`max_upload_bytes` for bytes, :func:`max_path_bytes` for a path), checked
    before parsing; ``label_column`` picks the
    label/text column of a table by name or 0-based index. Returns a :class:`Dataset` with
    ``x (n, d)`` float32; raises :class:`DataError` naming the problem for any bad file.
    """
    is_upload = isinstance(source, (bytes, bytearray, memoryview))
    limit = (max_upload_bytes() if is_upload else max_path_bytes()) if max_bytes is None else int(max_bytes)
    if is_upload:
        data: bytes | Path = bytes(source)
        if not filename:
            raise DataError("filename: an upload needs its file name (the extension tells the format), got none")
        name, size, where = str(filename), len(data), "upload"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name, where = str(filename or path.name), str(path)
        if not path.exists():
            raise DataError(f"{name}: no such file: {path}")
        if not path.is_file():
            raise DataError(f"{name}: not a regular file: {path}")
        data, size = path, path.stat().st_size
    else:
        raise DataError(f"source: expected a file path or the bytes of an upload, got {type(source).__name__}")
    name = os.path.basename(name) or name
    ext = Path(name).suffix.lower()
    if ext not in FORMATS:
        got = f"extension {ext!r}" if ext else "no extension"
        raise DataError(f"{name}: wrong extension: {got}; expected one of {', '.join(FORMATS)}")
    if size > limit:
        raise _too_large(name, size, limit, upload=where == "upload")
    if size == 0:
        raise DataError(f"{name}: zero rows: the file is empty (0 bytes)")
    fmt = FORMATS[ext]
    reader = _READERS[fmt]
    try:
        got = reader(data, name, limit=limit, label_column=label_column)
        x, labels, texts, notes, line_of = got[:5]
        edges = got[5] if len(got) > 5 else None  # the array formats may carry a graph
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{name}: too large: not enough memory to read it") from None
    except Exception as exc:  # any parser failure on a damaged file
        raise DataError(f"{name}: corrupt: not a readable {fmt} file ({type(exc).__name__}: "
                        f"{_short(exc)})") from None
    x = validate_embeddings(x, name, line_of=line_of)
    try:
        return Dataset(x, labels=labels, texts=texts, name=Path(name).stem, source=where, notes=tuple(notes),
                       edge_index=edges)
    except DataError as exc:  # labels, texts or edges that do not match the rows
        raise DataError(f"{name}: {exc}") from None


#: Formats :func:`load_arrays` reads: named arrays, never pickles.
ARRAY_FORMATS = (".npz", ".safetensors")


def load_arrays(path, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` or ``.safetensors`` file by name (weights, not rows of embeddings).

    The decoded size is bounded before anything is decoded: ``.npz`` members are read with a running
    count (a zip's declared sizes are not trusted) and every ``.npy`` header is checked before NumPy
    allocates (the archive's declared sizes are checked first, as for embeddings); a ``.safetensors``
    file is stored uncompressed, so its size on disk bounds it.
    ``max_bytes`` caps the decoded size (None: :func:`max_path_bytes`, as for any file on disk).
    Raises :class:`DataError` naming the problem.
    """
    limit = max_path_bytes() if max_bytes is None else int(max_bytes)
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(f"path: expected a file path, got {type(path).__name__}")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(f"{name}: no such file: {path}")
    ext = path.suffix.lower()
    if ext not in ARRAY_FORMATS:
        hint = (" (a PyTorch pickle: pickles are never loaded; save the state_dict with "
                "safetensors.torch.save_file, or pass the state_dict itself)") if ext in (".pt", ".pth", ".bin") else ""
        raise DataError(f"{name}: wrong extension {ext!r}; expected one of {', '.join(ARRAY_FORMATS)}{hint}")
    size = path.stat().st_size
    if size > limit:
        raise _too_large(name, size, limit, upload=False)
    if ext == ".safetensors":
        return _safetensors_arrays(path.read_bytes(), name)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{name}: corrupt: not a valid .npz (zip) archive") from None
    with zf:
        streams = _npz_streams(zf, name, limit)
    return {key: _load_npy_stream(stream, name, f"array {key!r}", limit) for key, stream in streams.items()}


# -- helpers ---------------------------------------------------------------------------------------

def check_size(name: str, size: int, limit: int, *, upload: bool) -> None:
    """Raise the loaders' own "too large" :class:`DataError` when ``size`` bytes exceed ``limit`` (for a
    caller that knows a file's size before it has its bytes, such as an upload still arriving)."""
    if size > limit:
        raise _too_large(name, size, limit, upload=upload)


def _too_large(name: str, size: int, limit: int, *, upload: bool) -> DataError:
    """The error for a file of ``size`` bytes over ``limit``, naming the setting that raises it."""
    which, env = ("upload limit", ENV_MAX_UPLOAD_MB) if upload else ("limit", f"{ENV_MAX_PATH_MB} or max_bytes")
    return DataError(f"{name}: too large: {_mib(size)} exceeds the {which} of {_mib(limit)} (set {env} to raise it)")


def _mib(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB / 10 else f"{n} bytes"


def _short(exc: BaseException, limit: int = 160) -> str:
    s = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _open(data: bytes | Path):
    return io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")


def _read_all(data: bytes | Path) -> bytes:
    return data if isinstance(data, bytes) else data.read_bytes()


#: Magic numbers of binary formats people rename by mistake, and what they are.
_BINARY_MAGIC = ((b"\x93NUMPY", "a NumPy .npy array"), (b"PK\x03\x04", "a zip archive (.npz?)"),
                 (b"PAR1", "a Parquet file"), (b"\x80", "a Python pickle"))


def _text_or_refuse(raw: bytes, name: str, what: str) -> None:
    """Refuse a binary file given a text extension: ``not a text file`` (naming what it looks like),
    instead of whatever the text parser would make of it (ragged rows, a bad number)."""
    head = raw[:8192]
    kind = next((k for magic, k in _BINARY_MAGIC if head.startswith(magic)), None)
    if kind is None and b"\x00" not in head:
        try:
            head.decode("utf-8")
            return
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # (a multi-byte character cut at the 8 KB boundary is fine)
                kind = "binary data"
            else:
                return
    raise DataError(f"{name}: not a text file: it looks like {kind or 'binary data'}, but a {what} file is text "
                    f"(rename it to its real extension)")


def _is_pickle(head: bytes) -> bool:
    # protocol 2+ starts with PROTO (0x80) then the protocol number; 0/1 start with MARK '(' or ']'/'}'
    return (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head[:1] in (b"(", b"]", b"}")


def _npy_header(f, name: str, what: str, limit: int | None = None):
    """``(shape, dtype)`` of the .npy stream ``f`` (positioned at its start), refusing pickles and,
    with ``limit``, arrays whose header declares more bytes than that (NumPy allocates the declared
    shape before it reads a byte of data)."""
    head = f.read(len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        if _is_pickle(head):
            raise DataError(f"{name}: pickle: {what} is a Python pickle, not a NumPy array; pickles are never "
                            "loaded (save with numpy.save of a numeric array)")
        raise DataError(f"{name}: corrupt: {what} does not start with the NumPy .npy magic string")
    f.seek(-len(_NPY_MAGIC), io.SEEK_CUR)
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        shape, _, dtype = (fmt.read_array_header_1_0(f) if version == (1, 0) else fmt.read_array_header_2_0(f))
    except Exception as exc:
        raise DataError(f"{name}: corrupt: {what} has a damaged .npy header ({_short(exc)})") from None
    if dtype.hasobject:
        raise DataError(f"{name}: pickle: {what} holds Python objects (dtype {dtype}), stored as a pickle; "
                        "pickles are never loaded (save a numeric array)")
    declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if limit is not None and declared > limit:
        raise DataError(f"{name}: too large: {what} declares shape {shape} of {dtype} ({_mib(declared)}), over the "
                        f"limit of {_mib(limit)} ({_RAISE})")
    return shape, dtype


def _load_npy_stream(f, name: str, what: str, limit: int | None = None) -> np.ndarray:
    start = f.tell()
    shape, dtype = _npy_header(f, name, what, limit)
    f.seek(start)
    try:
        return np.load(f, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{name}: corrupt: {what} (shape {shape}, dtype {dtype}) cannot be read "
                        f"({_short(exc)}); the file may be truncated") from None


def _read_npy(data, name, *, limit, label_column):
    with _open(data) as f:
        x = _load_npy_stream(f, name, "the file", limit)
    return x, None, None, [], None


def _pick(members: dict, name: str, fmt: str):
    """Choose ``(x, labels, texts, notes, edge_index)`` among named arrays: ``members`` maps a name
    to ``(shape, dtype, get)`` where ``get()`` returns the array (loaded only when chosen)."""
    notes = []
    meta = {k: (shape, dtype) for k, (shape, dtype, _) in members.items()}
    side = _LABEL_NAMES + _TEXT_NAMES + (_EDGE_NAME,)
    xkey = next((k for k in _X_NAMES if k in members), None)
    if xkey is None:
        numeric2d = [k for k, (s, dt) in meta.items() if len(s) == 2 and dt.kind in "biuf" and k not in side]
        numeric = [k for k, (s, dt) in meta.items() if dt.kind in "biuf" and k not in side]
        if numeric2d:
            xkey = numeric2d[0]
            if len(numeric2d) > 1:
                notes.append(f"used array {xkey!r} (the first numeric 2-D one of {numeric2d})")
        elif numeric:  # validation then says what is wrong with it (1-D, empty…)
            xkey = numeric[0]
        else:
            listing = ", ".join(f"{k} {s} {dt}" for k, (s, dt) in meta.items()) or "none"
            raise DataError(f"{name}: non-numeric: no numeric 2-D array in the {fmt} file; members: {listing}")
    x = members[xkey][2]()
    labels = texts = None
    lkey = next((k for k in _LABEL_NAMES if k in members and k != xkey), None)
    if lkey is not None:
        labels = members[lkey][2]()
        if labels.ndim != 1:
            raise DataError(f"{name}: labels {lkey!r}: expected a 1-D array of one label per row, got shape "
                            f"{labels.shape}")
        if labels.dtype.kind == "S":
            labels = np.char.decode(labels, "utf-8", "replace")
        notes.append(f"labels from array {lkey!r}")
    tkey = next((k for k in _TEXT_NAMES if k in members and k != xkey), None)
    if tkey is not None:
        t = members[tkey][2]()
        texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in t.reshape(-1).tolist()]
        notes.append(f"texts from array {tkey!r}")
    edges = None
    if _EDGE_NAME in members and _EDGE_NAME != xkey:
        edges = members[_EDGE_NAME][2]()
        notes.append(f"graph from array {_EDGE_NAME!r} ({edges.shape[-1] if edges.ndim == 2 else '?'} edges)")
    return x, labels, texts, notes, edges


#: Bytes read from a zip member at a time (the running count is checked between reads).
_CHUNK = 1 << 20


def _read_member(zf, info, name: str, budget: int) -> io.BytesIO:
    """The decompressed bytes of one ``.npz`` member, read in chunks and refused as soon as they pass
    ``budget``: the sizes a zip declares are not trusted."""
    key = info.filename[:-4]
    buf = io.BytesIO()
    try:
        with zf.open(info) as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                buf.write(chunk)
                if buf.tell() > budget:
                    raise DataError(f"{name}: too large: array {key!r} decompresses past the limit "
                                    f"(more than {_mib(budget)} left of it; {_RAISE})")
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{name}: corrupt: member {key!r} cannot be read ({_short(exc)})") from None
    buf.seek(0)
    return buf


def _read_npz(data, name, *, limit, label_column):
    try:
        zf = zipfile.ZipFile(_open(data))
    except zipfile.BadZipFile:
        raise DataError(f"{name}: corrupt: not a valid .npz (zip) archive") from None
    with zf:
        streams = _npz_streams(zf, name, limit)
    if not streams:
        raise DataError(f"{name}: zero rows: the .npz archive holds no arrays")
    members = {}
    for key, stream in streams.items():
        shape, dtype = _npy_header(stream, name, f"array {key!r}", limit)
        stream.seek(0)
        members[key] = (shape, dtype, lambda s=stream, k=key: _load_npy_stream(s, name, f"array {k!r}", limit))
    x, labels, texts, notes, edges = _pick(members, name, "npz")
    return x, labels, texts, notes, None, edges


def _npz_streams(zf, name: str, limit: int) -> dict[str, io.BytesIO]:
    """The decompressed ``.npy`` members of an ``.npz`` by name, at most ``limit`` bytes in all: the
    sizes the archive declares are checked first, then a running count while reading (they may lie)."""
    total = sum(i.file_size for i in zf.infolist())
    if total > limit:
        raise DataError(f"{name}: too large: {_mib(total)} uncompressed exceeds the limit of {_mib(limit)} "
                        f"({_RAISE})")
    streams, used = {}, 0
    for info in zf.infolist():
        if info.filename.endswith(".npy"):
            stream = _read_member(zf, info, name, limit - used)
            used += stream.getbuffer().nbytes
            streams[info.filename[:-4]] = stream
    return streams


def _safetensors_arrays(raw: bytes, name: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file's bytes as a NumPy array, by name."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        return dict(load(raw))
    except SafetensorError as exc:
        raise DataError(f"{name}: corrupt: not a valid safetensors file ({_short(exc)})") from None
    except (TypeError, ValueError) as exc:  # e.g. bfloat16, which NumPy has no type for
        raise DataError(f"{name}: non-numeric: a tensor has a dtype NumPy cannot hold ({_short(exc)}); "
                        "convert to float32 before saving") from None


def _read_safetensors(data, name, *, limit, label_column):
    arrays = _safetensors_arrays(_read_all(data), name)
    if not arrays:
        raise DataError(f"{name}: zero rows: the safetensors file holds no tensors")
    members = {k: (a.shape, a.dtype, lambda a=a: a) for k, a in arrays.items()}
    x, labels, texts, notes, edges = _pick(members, name, "safetensors")
    return x, labels, texts, notes, None, edges


# -- tables (CSV, TSV, Parquet) -------------------------------------------------------------------

def _is_number(s: str) -> bool:
    try:
        float(s)
    except (TypeError, ValueError):
        return False
    return True


def _first_rows(text: str, delimiter: str, count: int = 2) -> list[list[str]]:
    rows = []
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        if row and any(cell.strip() for cell in row):
            rows.append(row)
            if len(rows) == count:
                break
    return rows


def _has_header(rows: list[list[str]]) -> bool:
    """A first row with text in a column where the second row holds a number (csv.Sniffer's idea)."""
    if not rows:
        return False
    first = [c.strip() for c in rows[0]]
    if len(rows) == 1:
        return not any(_is_number(c) for c in first)
    second = [c.strip() for c in rows[1]]
    return any(not _is_number(a) and a != "" and _is_number(b) for a, b in zip(first, second))


def _ragged_line(text: str, delimiter: str, header: bool) -> str | None:
    """Describe the first row whose field count differs from the first row's, or None."""
    expected = None
    for line_no, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
        if not row:
            continue
        if expected is None:
            expected, first = len(row), line_no
            continue
        if len(row) != expected:
            return (f"ragged rows: line {line_no} has {len(row)} field{'s' * (len(row) != 1)}, expected {expected} "
                    f"(as line {first})")
    return None


def _read_delimited(data, name, *, limit, label_column, delimiter):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    raw = _read_all(data)
    _text_or_refuse(raw, name, "CSV" if delimiter == "," else "TSV")
    text = raw.decode("utf-8", errors="replace")
    rows = _first_rows(text, delimiter)
    if not rows:
        raise DataError(f"{name}: zero rows: the file holds no data")
    header = _has_header(rows)
    if header and len(rows) < 2:
        raise DataError(f"{name}: zero rows: only a header line, no data")
    try:
        table = pcsv.read_csv(
            io.BytesIO(raw),
            read_options=pcsv.ReadOptions(autogenerate_column_names=not header),
            parse_options=pcsv.ParseOptions(delimiter=delimiter),
            convert_options=pcsv.ConvertOptions(check_utf8=False),
        )
    except pa.ArrowInvalid as exc:
        msg = _ragged_line(text, delimiter, header)
        if msg or "Expected" in str(exc):
            raise DataError(f"{name}: {msg or 'ragged rows: ' + _short(exc)}") from None
        raise DataError(f"{name}: corrupt: {_short(exc)}") from None
    if not header:
        table = table.rename_columns([f"column {i}" for i in range(table.num_columns)])
    offset = 2 if header else 1
    # line numbers assume no blank lines before the data (pyarrow skips blank lines)
    x, labels, texts, notes = _from_table(table, name, label_column, row_word="row")
    if header:
        notes.insert(0, "first line read as a header")
    return x, labels, texts, notes, (lambda r: r + offset)


def _read_csv(data, name, **kw):
    return _read_delimited(data, name, delimiter=",", **kw)


def _read_tsv(data, name, **kw):
    return _read_delimited(data, name, delimiter="\t", **kw)


#: Bytes per value of Parquet's fixed-width physical types once decoded.
_PARQUET_WIDTH = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8}
#: Bytes counted per string or binary value beyond its encoded size (Arrow's offsets, and room for
#: dictionary-encoded values, which decode to one copy each).
_PARQUET_BYTES_PER_STRING = 64


def _parquet_decoded_bytes(meta) -> int:
    """An upper estimate of the memory a Parquet file takes once decoded, from its metadata alone:
    per column chunk, values × width for fixed-width types, and for strings the larger of their
    uncompressed size and 64 bytes a value. The encoded sizes the file reports are no bound: run-
    length and dictionary encodings store 80 million equal values in a few hundred kilobytes."""
    total = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        for j in range(group.num_columns):
            col = group.column(j)
            width = _PARQUET_WIDTH.get(col.physical_type)
            if width is not None:
                total += col.num_values * width
            else:
                total += max(col.total_uncompressed_size, col.num_values * _PARQUET_BYTES_PER_STRING)
    return total


def _read_parquet(data, name, *, limit, label_column):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(_open(data))
    except Exception as exc:
        raise DataError(f"{name}: corrupt: not a valid Parquet file ({_short(exc)})") from None
    total = _parquet_decoded_bytes(pf.metadata)
    if total > limit:
        raise DataError(f"{name}: too large: about {_mib(total)} once decoded ({pf.metadata.num_rows:,} rows) exceeds "
                        f"the limit of {_mib(limit)} ({_RAISE})")
    table = pf.read()
    if table.num_rows == 0:
        raise DataError(f"{name}: zero rows: the Parquet file has columns {table.column_names} but no rows")
    x, labels, texts, notes = _from_table(table, name, label_column, row_word="row")
    return x, labels, texts, notes, None


def _column_kind(col) -> str:
    import pyarrow as pa
    import pyarrow.types as t

    typ = col.type
    if t.is_dictionary(typ):
        typ = typ.value_type
    if t.is_integer(typ) or t.is_floating(typ) or t.is_decimal(typ) or t.is_null(typ):
        return "number"
    if (t.is_list(typ) or t.is_large_list(typ) or t.is_fixed_size_list(typ)) and (
            t.is_integer(typ.value_type) or t.is_floating(typ.value_type)):
        return "vector"
    if t.is_string(typ) or t.is_large_string(typ) or t.is_binary(typ) or t.is_large_binary(typ):
        return "text"
    if isinstance(typ, pa.DataType) and t.is_boolean(typ):
        return "number"
    return "other"


def _to_strings(col) -> list:
    vals = col.to_pylist()
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in vals]


def _numeric_like(values: list) -> float:
    present = [v for v in values if v not in (None, "")]
    if not present:
        return 0.0
    return sum(_is_number(v) for v in present) / len(present)


def _from_table(table, name: str, label_column, row_word: str):
    """``(x, labels, texts, notes)`` from a pyarrow Table by the column rules of the module doc."""
    cols = table.column_names
    kinds = {c: _column_kind(table.column(c)) for c in cols}
    notes: list[str] = []
    label = None
    if label_column is not None:
        if isinstance(label_column, (int, np.integer)) and not isinstance(label_column, bool):
            if not 0 <= label_column < len(cols):
                raise DataError(f"label_column: expected a column index in [0, {len(cols)}), got {label_column}")
            label = cols[int(label_column)]
        elif str(label_column) in cols:
            label = str(label_column)
        else:
            raise DataError(f"label_column: no column {label_column!r}; columns: {', '.join(map(str, cols))}")
    else:
        named = [c for c in cols if str(c).strip().lower() in _LABEL_NAMES + _TEXT_NAMES]
        if named and kinds[named[0]] in ("number", "text"):
            label = named[0]
    other = [c for c in cols if kinds[c] == "other" and c != label]
    if other:
        raise DataError(f"{name}: non-numeric: column(s) {other} have unsupported types "
                        f"({', '.join(str(table.column(c).type) for c in other)})")
    text_cols = [c for c in cols if kinds[c] == "text" and c != label]
    # a "text" column that is mostly numbers is a numeric column with bad cells: say where
    for c in text_cols:
        vals = _to_strings(table.column(c))
        if _numeric_like(vals) >= 0.5:
            bad = next(i for i, v in enumerate(vals) if v not in (None, "") and not _is_number(v))
            raise DataError(f"{name}: non-numeric: value {vals[bad]!r} in column {c!r}, {row_word} {bad} "
                            f"(0-based); expected a number")
    if label is None and len(text_cols) == 1:
        label = text_cols[0]
        text_cols = []
    if text_cols:
        if label is None:
            raise DataError(f"{name}: non-numeric: columns {text_cols} hold text; at most one label/text column is "
                            "allowed (name it with label_column=…)")
        raise DataError(f"{name}: non-numeric: columns {text_cols} hold text besides the label column {label!r}; "
                        "at most one label/text column is allowed")
    vec_cols = [c for c in cols if kinds[c] == "vector" and c != label]
    num_cols = [c for c in cols if kinds[c] == "number" and c != label]
    if vec_cols:
        vc = vec_cols[0]
        x = _stack_vectors(table.column(vc), name, vc)
        ignored = [c for c in vec_cols[1:] + num_cols]
        notes.append(f"vectors from list column {vc!r}" + (f"; ignored columns {ignored}" if ignored else ""))
    elif num_cols:
        x = np.column_stack([_numbers(table.column(c)) for c in num_cols])
    else:
        raise DataError(f"{name}: non-numeric: no numeric column (columns: {', '.join(map(str, cols))})")
    labels = texts = None
    if label is not None:
        lab_col = table.column(label)
        if kinds[label] == "number":
            labels = _numbers(lab_col)
            if np.isnan(labels).any():
                raise DataError(f"{name}: label column {label!r} has missing values")
            if np.all(labels == np.round(labels)):
                labels = labels.astype(np.int64)
        else:
            labels, texts = labels_or_texts(_to_strings(lab_col), table.num_rows)
        notes.append(f"column {label!r} read as {'labels' if labels is not None else 'texts'}")
    return x, labels, texts, notes


def _numbers(col) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _stack_vectors(col, name: str, cname: str) -> np.ndarray:
    import pyarrow as pa

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    lengths = np.asarray(col.value_lengths().fill_null(-1).to_numpy(zero_copy_only=False))
    if (lengths < 0).any():
        r = int(np.flatnonzero(lengths < 0)[0])
        raise DataError(f"{name}: NaN/inf: list column {cname!r} has a missing vector at row {r}")
    if len(lengths) and (lengths != lengths[0]).any():
        r = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataError(f"{name}: ragged rows: row {r} of list column {cname!r} has {lengths[r]} values, "
                        f"expected {lengths[0]} (as row 0)")
    flat = col.flatten()
    vals = np.asarray(pa.compute.cast(flat, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return vals.reshape(len(lengths), int(lengths[0]) if len(lengths) else 0)


# -- word2vec / GloVe text --------------------------------------------------------------------------

_INT = re.compile(r"^\d+$")


def _read_word2vec(data, name, *, limit, label_column):
    raw = _read_all(data)
    _text_or_refuse(raw, name, "word2vec/GloVe")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: corrupt: not UTF-8 text (byte {exc.start}); a word2vec/GloVe file is text") from None
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if not lines:
        raise DataError(f"{name}: zero rows: the file holds no vectors")
    notes = []
    header = None
    first = lines[0][1].split()
    if len(first) == 2 and all(_INT.match(t) for t in first):
        later = lines[1][1].split() if len(lines) > 1 else []
        if len(later) != 2:  # "n d" followed by longer lines: a word2vec header
            header = (int(first[0]), int(first[1]))
            lines = lines[1:]
            notes.append(f"word2vec header: {header[0]} vectors of dimension {header[1]}")
    if not lines:
        raise DataError(f"{name}: zero rows: only a header line, no vectors")
    split = [ln.split() for _, ln in lines]
    words_present = not _is_number(split[0][0])
    start = 1 if words_present else 0
    width = len(split[0])
    for (line_no, _), parts in zip(lines, split):
        if len(parts) != width:
            raise DataError(f"{name}: ragged rows: line {line_no} has {len(parts) - start} values, expected "
                            f"{width - start} (as line {lines[0][0]})")
    body = "\n".join(" ".join(p[start:]) for p in split)
    try:
        x = np.loadtxt(io.StringIO(body), dtype=np.float64, ndmin=2) if width > start else np.empty((len(split), 0))
    except ValueError:
        for (line_no, _), parts in zip(lines, split):
            for tok in parts[start:]:
                if not _is_number(tok):
                    raise DataError(f"{name}: non-numeric: value {tok!r} on line {line_no}; "
                                    "expected a number") from None
        raise
    if header is not None and (header[0], header[1]) != x.shape:
        raise DataError(f"{name}: corrupt: the header says {header[0]} vectors of dimension {header[1]}, the file "
                        f"holds {x.shape[0]} of dimension {x.shape[1]}")
    words = [p[0] for p in split] if words_present else None
    line_numbers = [ln for ln, _ in lines]
    return x, None, words, notes, (lambda r: line_numbers[r])


_READERS = {
    "npy": _read_npy, "npz": _read_npz, "csv": _read_csv, "tsv": _read_tsv, "parquet": _read_parquet,
    "word2vec": _read_word2vec, "safetensors": _read_safetensors,
}
