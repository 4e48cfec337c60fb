"""open_lazy: .npy memory-mapped and Parquet by row groups, checked like the loaders, read only on demand."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from workbench.data import open_lazy
from workbench.errors import DataError
from workbench.report import analyze_keys


def _keys(rng, n=2500, d=12):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_npy_is_memory_mapped_not_read(tmp_path, rng):
    x = _keys(rng)
    np.save(tmp_path / "k.npy", x)
    m = open_lazy(tmp_path / "k.npy")
    assert isinstance(m, np.memmap) and not m.flags.writeable
    np.testing.assert_array_equal(m, x)


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(pickle.dumps([1.0, 2.0])), "pickle"),
    (lambda p: np.save(p, np.zeros((2, 3, 4), np.float32)), "2-D"),
    (lambda p: np.save(p, np.array([["a", "b"]])), "non-numeric"),
    (lambda p: np.save(p, np.zeros((0, 4), np.float32)), "zero rows"),
    (lambda p: p.write_bytes(np.lib.format.MAGIC_PREFIX + b"\x01\x00garbage"), "corrupt"),
])
def test_bad_npy_files_are_named(tmp_path, make, match):
    p = tmp_path / "bad.npy"
    make(p)
    with pytest.raises(DataError, match=f"bad.npy: .*{match}|bad.npy: {match}"):
        open_lazy(p)


def test_a_truncated_npy_is_refused(tmp_path, rng):
    p = tmp_path / "cut.npy"
    np.save(p, _keys(rng, 100, 8))
    p.write_bytes(p.read_bytes()[:-64])
    with pytest.raises(DataError, match="cut.npy: corrupt"):
        open_lazy(p)


def _parquet(path, x, labels=None, rows_per_group=400):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {"embedding": pa.array(list(x), type=pa.list_(pa.float32()))}
    if labels is not None:
        cols["label"] = pa.array(labels)
    pq.write_table(pa.table(cols), path, row_group_size=rows_per_group)


def test_parquet_opens_by_row_groups(tmp_path, rng):
    x = _keys(rng, 1000, 6)
    _parquet(tmp_path / "k.parquet", x, labels=[f"t{i % 3}" for i in range(1000)], rows_per_group=300)
    a = open_lazy(tmp_path / "k.parquet")
    assert a.shape == (1000, 6) and a.dtype == np.float32
    assert a.chunks[0] == (300, 300, 300, 100)  # one chunk per row group
    np.testing.assert_array_equal(a.compute(), x)
    np.testing.assert_array_equal(a[[5, 310, 999]].compute(), x[[5, 310, 999]])


def test_other_extensions_and_missing_files_are_named(tmp_path):
    (tmp_path / "k.csv").write_text("1,2\n3,4\n")
    with pytest.raises(DataError, match="k.csv: wrong extension for lazy opening"):
        open_lazy(tmp_path / "k.csv")
    with pytest.raises(DataError, match="nope.npy: no such file"):
        open_lazy(tmp_path / "nope.npy")
    with pytest.raises(DataError, match="path"):
        open_lazy(123)


def test_the_report_of_lazy_keys_equals_the_in_memory_one(tmp_path, rng):
    x = _keys(rng)
    np.save(tmp_path / "k.npy", x)
    _parquet(tmp_path / "k.parquet", x, rows_per_group=700)
    want = analyze_keys(x, sample=800, replicates=2)
    for lazy in (open_lazy(tmp_path / "k.npy"), open_lazy(tmp_path / "k.parquet")):
        got = analyze_keys(lazy, sample=800, replicates=2)
        assert got.recommendation.choice == want.recommendation.choice
        assert got.settings["sample"] == want.settings["sample"]
        for m in want.metrics:
            assert got.metric(m.name).value == pytest.approx(m.value, rel=1e-6, abs=1e-9)
    small = analyze_keys(open_lazy(tmp_path / "k.parquet"), sample=None)  # every key: read them all
    assert small.settings["sample"] is None and small.n_keys == 2500


def test_non_finite_keys_in_a_lazy_file_are_refused(tmp_path, rng):
    x = _keys(rng, 600, 4)
    x[123, 2] = np.nan
    _parquet(tmp_path / "nan.parquet", x, rows_per_group=100)
    from workbench.errors import NumericalError

    with pytest.raises(NumericalError, match="K: expected finite"):
        analyze_keys(open_lazy(tmp_path / "nan.parquet"), sample=200)
