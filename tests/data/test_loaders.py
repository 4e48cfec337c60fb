"""Embedding files: every format round-trips, every bad file gives a DataError that names the problem."""
from __future__ import annotations

import io
import pathlib
import pickle

import numpy as np
import pytest

from workbench.data import Dataset, check_pair, load_embeddings, max_upload_bytes
from workbench.data.loaders import DEFAULT_MAX_BYTES, ENV_MAX_UPLOAD_MB, FORMATS
from workbench.errors import ConfigurationError, DataError


@pytest.fixture
def x(rng):
    return rng.standard_normal((12, 5)).astype(np.float32)


def _both(path: pathlib.Path, **kw):
    """Load a file from its path and as an upload (bytes + name); both must agree."""
    a = load_embeddings(path, **kw)
    b = load_embeddings(path.read_bytes(), filename=path.name, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    return a


def _error(src, **kw) -> str:
    with pytest.raises(DataError) as ei:
        load_embeddings(src, **kw)
    return str(ei.value)


# -- round trips ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_npy_round_trip(tmp_path, x, dtype):
    a = (x * 10).astype(dtype)
    np.save(tmp_path / "e.npy", a)
    ds = _both(tmp_path / "e.npy")
    assert ds.x.dtype == np.float32 and ds.x.shape == (12, 5)
    np.testing.assert_array_equal(ds.x, a.astype(np.float32))
    assert ds.name == "e" and ds.labels is None and ds.texts is None


def test_npz_named_members_with_labels_and_texts(tmp_path, x):
    labels = np.arange(12) % 3
    words = np.array([f"w{i}" for i in range(12)])
    np.savez(tmp_path / "e.npz", other=np.zeros((3, 3)), embeddings=x, labels=labels, words=words)
    ds = _both(tmp_path / "e.npz")
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.texts == [f"w{i}" for i in range(12)]


def test_npz_without_names_uses_the_first_numeric_2d_array(tmp_path, x):
    np.savez_compressed(tmp_path / "e.npz", np.arange(4.0), x, np.ones((2, 2)))  # arr_0 is 1-D
    ds = _both(tmp_path / "e.npz")
    np.testing.assert_array_equal(ds.x, x)


def test_csv_with_header_and_label_column(tmp_path, x):
    labels = ["cat", "dog", "cat", "eel"] * 3
    lines = ["a,b,kind,c,d,e"] + [f"{r[0]!r},{r[1]!r},{lab},{r[2]!r},{r[3]!r},{r[4]!r}"
                                  for r, lab in zip(x.astype(float).tolist(), labels)]
    (tmp_path / "e.csv").write_text("\n".join(lines) + "\n")
    ds = _both(tmp_path / "e.csv")
    np.testing.assert_allclose(ds.x, x, rtol=1e-7)
    assert ds.labels.tolist() == labels and ds.texts is None
    assert any("header" in n for n in ds.notes)


def test_csv_without_header_and_tsv_with_word_column(tmp_path, x):
    np.savetxt(tmp_path / "plain.csv", x, delimiter=",")
    np.testing.assert_allclose(_both(tmp_path / "plain.csv").x, x, rtol=1e-6)
    words = [f"word{i}" for i in range(12)]  # distinct: texts, not labels
    (tmp_path / "e.tsv").write_text("\n".join(w + "\t" + "\t".join(map(repr, r))
                                              for w, r in zip(words, x.astype(float).tolist())))
    ds = _both(tmp_path / "e.tsv")
    np.testing.assert_allclose(ds.x, x, rtol=1e-7)
    assert ds.texts == words and ds.labels is None


def test_csv_numeric_label_column_by_name_and_by_argument(tmp_path, x):
    y = np.arange(12) % 4
    rows = ["f0,f1,f2,f3,f4,label"] + [",".join(map(repr, r)) + f",{c}" for r, c in zip(x.astype(float).tolist(), y)]
    (tmp_path / "e.csv").write_text("\n".join(rows))
    ds = _both(tmp_path / "e.csv")
    assert ds.x.shape == (12, 5)
    np.testing.assert_array_equal(ds.labels, y)
    ds2 = load_embeddings(tmp_path / "e.csv", label_column="f0")
    # the named column becomes the labels; the other five (f1..f4 and "label") the vectors
    assert ds2.x.shape == (12, 5) and ds2.texts is None
    np.testing.assert_allclose(ds2.labels, x[:, 0].astype(float), rtol=1e-7)
    np.testing.assert_allclose(ds2.x, np.column_stack([x[:, 1:], y]), rtol=1e-7)
    assert "column 'f0' read as labels" in ds2.notes
    with pytest.raises(DataError, match="label_column"):
        load_embeddings(tmp_path / "e.csv", label_column="nope")


def test_parquet_columns_and_list_column(tmp_path, x):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table({f"f{i}": x[:, i] for i in range(5)} | {"class": ["a", "b"] * 6})
    pq.write_table(t, tmp_path / "cols.parquet")
    ds = _both(tmp_path / "cols.parquet")
    np.testing.assert_array_equal(ds.x, x)
    assert ds.labels.tolist() == ["a", "b"] * 6
    t2 = pa.table({"id": np.arange(12), "embedding": list(x.astype(np.float64)), "text": [f"s{i}" for i in range(12)]})
    pq.write_table(t2, tmp_path / "list.parquet")
    ds2 = _both(tmp_path / "list.parquet")
    np.testing.assert_array_equal(ds2.x, x)
    assert ds2.texts == [f"s{i}" for i in range(12)]


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("ext", [".txt", ".vec"])
def test_word2vec_and_glove_text(tmp_path, x, header, ext):
    words = [f"tok{i}" for i in range(12)]
    body = [w + " " + " ".join(f"{v:.6f}" for v in r) for w, r in zip(words, x.tolist())]
    lines = (["12 5"] if header else []) + body
    path = tmp_path / f"e{ext}"
    path.write_text("\n".join(lines) + "\n")
    ds = _both(path)
    np.testing.assert_allclose(ds.x, x, atol=1e-6)
    assert ds.texts == words


def test_plain_numeric_text_file(tmp_path, x):
    np.savetxt(tmp_path / "m.txt", x)
    ds = _both(tmp_path / "m.txt")
    np.testing.assert_allclose(ds.x, x, rtol=1e-6)
    assert ds.texts is None


def test_safetensors_round_trip(tmp_path, x):
    from safetensors.numpy import save_file

    save_file({"embeddings": x, "labels": np.arange(12, dtype=np.int64) % 2}, str(tmp_path / "e.safetensors"))
    ds = _both(tmp_path / "e.safetensors")
    np.testing.assert_array_equal(ds.x, x)
    np.testing.assert_array_equal(ds.labels, np.arange(12) % 2)


def test_every_format_has_a_round_trip_test():
    assert set(FORMATS.values()) == {"npy", "npz", "csv", "tsv", "parquet", "word2vec", "safetensors"}


# -- bad files ---------------------------------------------------------------------------------------

def test_wrong_extension(tmp_path, x):
    np.save(tmp_path / "e.npy", x)
    (tmp_path / "e.npy").rename(tmp_path / "e.json")
    msg = _error(tmp_path / "e.json")
    assert msg.startswith("e.json: wrong extension") and ".json" in msg and ".npy" in msg
    assert "no extension" in _error(b"1,2\n3,4\n", filename="noext")
    with pytest.raises(DataError, match="filename"):
        load_embeddings(b"1,2\n3,4\n")


@pytest.mark.parametrize("name, data", [
    ("bad.npy", b"\x93NUMPY garbage that is not a header"),
    ("bad.npy", b"hello world, not numpy"),
    ("bad.npz", b"PK\x03\x04 but not really a zip"),
    ("bad.parquet", b"not a parquet file at all" * 4),
    ("bad.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}xxxxxxxx"),
])
def test_corrupt_files(name, data):
    msg = _error(data, filename=name)
    assert msg.startswith(name) and "corrupt" in msg


def test_truncated_npy_is_corrupt(tmp_path, x):
    buf = io.BytesIO()
    np.save(buf, x)
    msg = _error(buf.getvalue()[:-7], filename="cut.npy")
    assert "corrupt" in msg and "truncated" in msg


@pytest.mark.parametrize("name, text, needles", [
    ("r.csv", "1,2,3\n4,5,6\n7,8\n", ("ragged rows", "line 3", "2 fields")),
    ("r.txt", "a 1 2 3\nb 4 5\n", ("ragged rows", "line 2")),
    ("t.csv", "name,kind,v1,v2\nx,a,1,2\ny,b,3,4\nz,a,5,6\n", ("non-numeric", "name", "kind")),
    ("c.csv", "1,2,3\n4,oops,6\n7,8,9\n", ("non-numeric", "'oops'", "row 1")),
    ("w.txt", "a 1 2\nb 3 x4\n", ("non-numeric", "'x4'", "line 2")),
])
def test_ragged_or_non_numeric_text_names_the_place(tmp_path, name, text, needles):
    (tmp_path / name).write_text(text)
    msg = _error(tmp_path / name)
    assert all(n in msg for n in needles), (needles, msg)


def test_ragged_list_column_in_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"embedding": [[1.0, 2.0], [3.0, 4.0, 5.0]]}), tmp_path / "r.parquet")
    msg = _error(tmp_path / "r.parquet")
    assert "ragged rows" in msg and "row 1" in msg


    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    assert "non-numeric" in _error(tmp_path / "s.npy")
    np.save(tmp_path / "z.npy", np.ones((3, 2), np.complex64))
    assert "non-numeric" in _error(tmp_path / "z.npy")


def test_nan_and_inf_are_counted_and_located(tmp_path, x):
    a = x.copy()
    a[2, 1] = np.nan
    a[5, 0] = np.inf
    a[5, 3] = -np.inf
    np.save(tmp_path / "n.npy", a)
    msg = _error(tmp_path / "n.npy")
    assert "NaN/inf" in msg and "3 non-finite values (1 NaN, 2 inf)" in msg
    assert "in 2 rows" in msg and "first at row 2, column 1" in msg and "2, 5" in msg
    (tmp_path / "n.csv").write_text("a,b\n1,2\n3,nan\n5,6\n")
    msg = _error(tmp_path / "n.csv")
    assert "1 non-finite value (1 NaN, 0 inf)" in msg and "row 1, column 1 (line 3)" in msg
    (tmp_path / "n.txt").write_text("a 1 2\nb 3 inf\n")
    assert "line 2" in _error(tmp_path / "n.txt")


def test_float64_values_beyond_float32(tmp_path):
    np.save(tmp_path / "big.npy", np.array([[1.0, 2.0], [1e300, 0.0]]))
    assert "float32 range" in _error(tmp_path / "big.npy")


def test_zero_rows(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((0, 4), np.float32))
    assert "zero rows" in _error(tmp_path / "z.npy")
    (tmp_path / "empty.csv").write_bytes(b"")
    assert "zero rows" in _error(tmp_path / "empty.csv")
    (tmp_path / "h.csv").write_text("a,b,c\n")
    assert "zero rows" in _error(tmp_path / "h.csv")
    (tmp_path / "h.txt").write_text("0 5\n")
    assert "zero rows" in _error(tmp_path / "h.txt")


def test_one_dimension(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(5.0))
    msg = _error(tmp_path / "v.npy")
    assert "one dimension" in msg and "(5,)" in msg
    np.save(tmp_path / "c.npy", np.ones((5, 1)))
    msg = _error(tmp_path / "c.npy")
    assert "one dimension" in msg and "d=1" in msg
    np.save(tmp_path / "t.npy", np.ones((2, 3, 4)))
    assert "2-D" in _error(tmp_path / "t.npy")


def test_too_large_is_refused_before_parsing(tmp_path, monkeypatch):
    big = tmp_path / "huge.npy"
    with open(big, "wb") as f:  # a 2 GiB sparse file: nothing is written, nothing may be read
        f.truncate(2 << 30)
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: pytest.fail("read before the size check"))
    monkeypatch.setenv("WORKBENCH_MAX_PATH_MB", "200")  # a file on disk: the path cap (default: memory / 4)
    msg = _error(big)
    assert msg.startswith("huge.npy: too large") and "2048.0 MiB" in msg and "WORKBENCH_MAX_PATH_MB" in msg
    monkeypatch.setenv(ENV_MAX_UPLOAD_MB, "0.001")  # bytes: the upload cap
    msg = _error(b"1,2\n3,4\n" * 200, filename="up.csv")
    assert "upload limit" in msg and ENV_MAX_UPLOAD_MB in msg
    msg = _error(b"1,2\n3,4\n", filename="small.csv", max_bytes=4)
    assert "too large" in msg and "8 bytes" in msg


def test_upload_limit_from_the_environment(monkeypatch):
    monkeypatch.delenv(ENV_MAX_UPLOAD_MB, raising=False)
    assert max_upload_bytes() == DEFAULT_MAX_BYTES == 200 * 2**20
    monkeypatch.setenv(ENV_MAX_UPLOAD_MB, "0.00001")
    assert "too large" in _error(b"1,2\n3,4\n1,2\n3,4\n", filename="e.csv")
    monkeypatch.setenv(ENV_MAX_UPLOAD_MB, "lots")
    with pytest.raises(ConfigurationError, match=ENV_MAX_UPLOAD_MB):
        load_embeddings(b"1,2\n3,4\n", filename="e.csv")


def test_path_limit_from_the_environment_and_the_machine(monkeypatch, tmp_path):
    from workbench.data import ENV_MAX_PATH_MB, max_path_bytes

    monkeypatch.delenv(ENV_MAX_PATH_MB, raising=False)
    assert max_path_bytes() >= max_upload_bytes()  # a quarter of the memory, never below the upload cap
    monkeypatch.setenv(ENV_MAX_PATH_MB, "0.5")
    assert max_path_bytes() == 2**19
    monkeypatch.setenv(ENV_MAX_PATH_MB, "-1")
    with pytest.raises(ConfigurationError, match=ENV_MAX_PATH_MB):
        max_path_bytes()
    np.save(tmp_path / "a.npy", np.ones((64, 8), np.float32))
    msg = _error(tmp_path / "a.npy", max_bytes=100)
    assert "too large" in msg and ENV_MAX_PATH_MB in msg and "upload" not in msg


def test_npz_zip_bomb_is_too_large(tmp_path):
    np.savez_compressed(tmp_path / "bomb.npz", x=np.zeros((2000, 1000)))  # 16 MB of zeros, tiny on disk
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    assert "uncompressed" in _error(tmp_path / "bomb.npz", max_bytes=1 << 20)


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def test_pickles_are_never_loaded(tmp_path):
    flag = tmp_path / "pwned"
    evil = np.array([_Evil(flag), 1], dtype=object)
    np.save(tmp_path / "obj.npy", evil, allow_pickle=True)
    msg = _error(tmp_path / "obj.npy")
    assert "pickle" in msg and "never loaded" in msg
    (tmp_path / "raw.npy").write_bytes(pickle.dumps(_Evil(flag)))
    msg = _error(tmp_path / "raw.npy")
    assert "pickle" in msg and "never loaded" in msg
    np.savez(tmp_path / "obj.npz", x=np.ones((3, 2)), labels=evil)
    assert "never loaded" in _error(tmp_path / "obj.npz")
    assert not flag.exists()


def test_bad_source_types(tmp_path):
    assert "no such file" in _error(tmp_path / "missing.npy")
    assert "not a regular file" in _error(tmp_path)
    assert "source" in _error(12345)


def test_check_pair_mismatched_key_value_dimensions(rng):
    k = Dataset(rng.standard_normal((10, 4)))
    check_pair(k, rng.standard_normal((10, 7)), queries=rng.standard_normal((3, 4)))
    with pytest.raises(DataError, match="mismatched key/value dimensions: 9 value rows for 10 keys"):
        check_pair(k, rng.standard_normal((9, 4)))
    with pytest.raises(DataError, match="mismatched query/key dimensions"):
        check_pair(k, k, queries=rng.standard_normal((3, 5)))


def test_dataset_checks_labels_and_texts(rng):
    x = rng.standard_normal((4, 3))
    with pytest.raises(DataError, match="labels: expected 4"):
        Dataset(x, labels=[1, 2])
    with pytest.raises(DataError, match="texts: expected 4"):
        Dataset(x, texts=["a"])
    ds = Dataset(x, labels=["a", "b", "a", "b"], texts=list("wxyz"))
    sub = ds.subset([2, 0])
    np.testing.assert_array_equal(sub.x, ds.x[[2, 0]])
    assert sub.labels.tolist() == ["a", "a"] and sub.texts == ["y", "w"]


def test_labels_that_do_not_match_the_rows(tmp_path, x):
    np.savez(tmp_path / "m.npz", x=x, labels=np.arange(5))
    msg = _error(tmp_path / "m.npz")
    assert msg.startswith("m.npz: labels: expected 12")


def test_npz_edge_index_is_a_graph_over_the_rows(tmp_path):
    from workbench.data import load_embeddings

    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    p = tmp_path / "g.npz"
    np.savez(p, x=x, edge_index=np.array([[0, 1, 4], [1, 0, 2]]))
    ds = load_embeddings(p)
    np.testing.assert_array_equal(ds.edge_index, [[0, 1, 4], [1, 0, 2]])
    assert any("graph" in n for n in ds.notes)
    sub = ds.subset([4, 2, 0])  # edges between kept rows, renumbered
    np.testing.assert_array_equal(sub.edge_index, [[0], [1]])
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x, edge_index=np.array([[0, 7], [1, 0]]))
    with pytest.raises(DataError, match=r"bad.npz: edge_index: node indices must lie in \[0, 5\)"):
        load_embeddings(bad)
    bad2 = tmp_path / "bad2.npz"
    np.savez(bad2, x=x, edge_index=np.zeros((3, 2), np.int64))
    with pytest.raises(DataError, match=r"edge_index: expected shape \(2, E\)"):
        load_embeddings(bad2)


# -- hostile files: the decoded size is bounded before decoding ---------------------------------------

def _npy_bytes(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _traced_peak(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_an_npy_header_that_declares_a_huge_array_is_refused_before_allocation():
    header = np.lib.format.header_data_from_array_1_0(np.zeros((4, 4), np.float32))
    header["shape"] = (100_000_000, 4)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(np.zeros(16, np.float32).tobytes())
    limit = 10 << 20
    peak = _traced_peak(lambda: pytest.raises(DataError, load_embeddings, buf.getvalue(), filename="h.npy",
                                              max_bytes=limit))
    with pytest.raises(DataError, match=r"h.npy: too large: the file declares shape \(100000000, 4\)"):
        load_embeddings(buf.getvalue(), filename="h.npy", max_bytes=limit)
    assert peak < 2 * limit


def test_an_npz_member_that_lies_about_its_size_is_refused_within_the_limit():
    """A zip whose directory declares a few bytes for a member that inflates to 60 MB."""
    import struct
    import zipfile

    big = _npy_bytes(np.zeros((60 << 20) // 4, np.float32).reshape(-1, 16))
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", big)
    data = bytearray(raw.getvalue())
    # rewrite the uncompressed size in the local header and the central directory to 1,000 bytes
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        data[at + offset:at + offset + 4] = struct.pack("<I", 1000)
    limit = 10 << 20
    peak = _traced_peak(lambda: pytest.raises(DataError, load_embeddings, bytes(data), filename="bomb.npz",
                                              max_bytes=limit))
    with pytest.raises(DataError, match="bomb.npz: (too large|corrupt)"):
        load_embeddings(bytes(data), filename="bomb.npz", max_bytes=limit)
    assert peak < 2 * limit + len(data)


def test_an_npz_member_that_inflates_past_the_limit_is_refused_while_reading():
    raw = io.BytesIO()
    np.savez_compressed(raw, x=np.zeros((1 << 20, 8), np.float32))  # 32 MiB of zeros, ~32 KiB on disk
    limit = 4 << 20
    with pytest.raises(DataError, match="too large"):
        load_embeddings(raw.getvalue(), filename="z.npz", max_bytes=limit)
    peak = _traced_peak(lambda: pytest.raises(DataError, load_embeddings, raw.getvalue(), filename="z.npz",
                                              max_bytes=limit))
    assert peak < 2 * limit


def test_a_parquet_file_that_decodes_far_past_its_size_is_refused_from_its_metadata():
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 10_000_000  # one repeated row: run-length encoding keeps the file tiny
    table = pa.table({"a": pa.array(np.zeros(n)), "b": pa.array(np.ones(n))})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data = buf.getvalue()
    assert len(data) < 1 << 20
    limit = 20 << 20
    with pytest.raises(DataError, match=r"too large: about .* once decoded \(10,000,000 rows\)"):
        load_embeddings(data, filename="rle.parquet", max_bytes=limit)
    peak = _traced_peak(lambda: pytest.raises(DataError, load_embeddings, data, filename="rle.parquet",
                                              max_bytes=limit))
    assert peak < 2 * limit


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".txt"])
@pytest.mark.parametrize("kind, make", [
    ("a NumPy .npy array", lambda: _npy_bytes(np.ones((4, 3), np.float32))),
    ("a zip archive", lambda: _npz_bytes(x=np.ones((4, 3), np.float32))),
    ("binary data", lambda: bytes(range(256)) * 4),
    ("binary data", lambda: b"\xff\xfe\x00 binary junk \x81\x82"),
])
def test_a_binary_file_with_a_text_extension_is_not_a_text_file(ext, kind, make):
    # issue 18 (9): a binary .npy renamed .csv was called "ragged rows: line 2 has 1 field"
    with pytest.raises(DataError, match=f"f{ext}: not a text file: it looks like {kind}"):
        load_embeddings(make(), filename=f"f{ext}")


def test_text_files_with_non_ascii_labels_still_load():
    text = "label,a,b\nçà,1,2\n日本,3,4\n".encode()
    ds = load_embeddings(text, filename="t.csv")
    assert ds.x.shape == (2, 2)


def _npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()
