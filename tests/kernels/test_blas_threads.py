"""The reference-counted BLAS thread limit: overlapping holders in any order restore the count."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from kernels.blas_threads import _libraries, one_blas_thread


def counts() -> dict[str, int]:
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


@pytest.fixture
def two_threads():
    """Every BLAS library on 2 threads for the test, whatever the machine's default."""
    with threadpool_limits(2, user_api="blas"):
        assert set(counts().values()) == {2}
        yield


def run_interleaved(order: list[str]) -> list[dict[str, int]]:
    """Threads A and B enter and leave :func:`one_blas_thread` in ``order`` (e.g. ``A+ B+ A- B-``);
    returns the BLAS counts seen after each step."""
    steps = {name: [threading.Event() for _ in range(2)] for name in "AB"}
    done = threading.Event()
    seen = []

    def holder(name):
        enter, leave = steps[name]
        enter.wait()
        with one_blas_thread("all"):
            done.set()
            leave.wait()
        done.set()

    threads = [threading.Thread(target=holder, args=(n,)) for n in "AB"]
    for t in threads:
        t.start()
    for step in order:
        done.clear()
        steps[step[0]][0 if step[1] == "+" else 1].set()
        assert done.wait(10)
        seen.append(counts())
    for t in threads:
        t.join(10)
    return seen


@pytest.mark.parametrize("order", [["A+", "B+", "A-", "B-"], ["A+", "B+", "B-", "A-"]])
def test_overlapping_holders_restore_the_count(two_threads, order):
    seen = run_interleaved(order)
    assert set(seen[0].values()) == {1} and set(seen[1].values()) == {1}
    assert set(seen[2].values()) == {1}, "one holder left, the other still runs: BLAS must stay on one thread"
    assert set(seen[3].values()) == {2}, "the last holder out restores the count the first one found"


def test_nested_and_sequential_use(two_threads):
    with one_blas_thread("all"):
        with one_blas_thread("numba"):
            assert set(counts().values()) == {1}
        assert set(counts().values()) == {1}
    assert set(counts().values()) == {2}
    with one_blas_thread():
        np.ones((64, 64)) @ np.ones((64, 64))
    assert set(counts().values()) == {2}


def test_numba_scope_leaves_numpy_blas_alone(two_threads):
    numba_libs = {c.filepath for c in _libraries("numba")}
    all_libs = {c.filepath for c in _libraries("all")}
    if numba_libs == all_libs:
        pytest.skip("NumPy and SciPy share one BLAS library here")
    with one_blas_thread("numba"):
        inside = counts()
    assert {inside[f] for f in numba_libs} == {1}
    assert {inside[f] for f in all_libs - numba_libs} == {2}


def test_scope_is_checked():
    with pytest.raises(ValueError, match="scope"):
        with one_blas_thread("some"):
            pass
