"""Exact attention past one machine: query blocks × key shards on a Dask cluster, merged by log-sum-exp.

``attend(mechanism, q, k, v)`` splits the keys (and values) into shards and the queries into
blocks; every (block, shard) task runs the mechanism's own kernel on its piece
(:meth:`~workbench.Mechanism.shard_partial`, returning ``(partial output, log-sum-exp)``), and the
partials of a block are merged pairwise in a tree of Dask tasks (:func:`merge_partials`), exactly:
the result equals the single-process call up to float rounding. Key shards come from a Dask
array's chunks along the key axis, from ``.npy`` files (one per shard, memory-mapped where the
task runs) or from splitting a NumPy array (the pieces travel in the task graph, so a lost worker's
tasks can be rerun; for data larger than the client's memory use Dask arrays or files).
Dask schedules, retries on lost workers and moves data: nothing here schedules.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from workbench.checks import integer
from workbench.distributed.cluster import ENV, get_client
from workbench.distributed.merge import merge_partials
from workbench.errors import ConfigurationError, DataError, ShapeError

#: Default queries per block (a task's output is ``block × dv`` floats).
QUERY_BLOCK = 4096


def _mechanism(mechanism, params: dict):
    import workbench

    if isinstance(mechanism, str):
        mech = workbench.make(mechanism, **params)
    elif isinstance(mechanism, workbench.Mechanism):
        mech = mechanism.with_params(**params) if params else mechanism
    else:
        raise ConfigurationError(f"mechanism: expected a registered name or a Mechanism, got {type(mechanism).__name__}")
    if mech.not_shardable:
        name = mech.registry_name or type(mech).__name__
        raise ConfigurationError(f"mechanism: {name} cannot run by key shards: {mech.not_shardable}")
    return mech


def _load(x):
    """A shard as an array: a path (``.npy``, memory-mapped) or the array itself."""
    if isinstance(x, (str, os.PathLike)):
        return np.load(x, mmap_mode="r", allow_pickle=False)
    return x


def _partial(mech, q, k, v, mask, q0: int, k0: int):
    return mech.shard_partial(np.asarray(_load(q)), np.asarray(_load(k)), np.asarray(_load(v)), mask=mask,
                              query_offset=q0, key_offset=k0)


def _finish(mech, merged, d: int, dv: int, dtype):
    out, lse = merged
    return mech.shard_finish(out, d, dv, dtype), lse


def _shape_of(x, what: str) -> tuple:
    if isinstance(x, (str, os.PathLike)):
        path = Path(x)
        if path.suffix != ".npy" or not path.is_file():
            raise DataError(f"{what}: expected a .npy file, got {str(path)!r}")
        return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
    return tuple(np.shape(x))


def _key_shards(k, v, key_shards: int | None, n_workers: int):
    """``[(k_shard, v_shard, offset, length)]``, ``Lk`` and ``dv`` from Dask arrays, lists of paths or arrays."""
    if isinstance(k, (list, tuple)):
        if not isinstance(v, (list, tuple)) or len(v) != len(k) or not k:
            raise ShapeError("k, v: expected two lists of the same (non-zero) number of shards")
        shards, off = [], 0
        for i, (ks, vs) in enumerate(zip(k, v)):
            sk, sv = _shape_of(ks, f"k[{i}]"), _shape_of(vs, f"v[{i}]")
            if len(sk) < 2 or sk[-2] != sv[-2]:
                raise ShapeError(f"k[{i}], v[{i}]: expected (..., Lk_i, d) and (..., Lk_i, dv), got {sk} and {sv}")
            shards.append((ks, vs, off, sk[-2]))
            off += sk[-2]
            dv = int(sv[-1])
        return shards, off, dv
    if hasattr(k, "chunks") and hasattr(k, "to_delayed"):  # Dask arrays: their chunks are the shards
        import dask.array as da

        v = da.asarray(v).rechunk({v.ndim - 2: k.chunks[-2]})
        k = k.rechunk({i: -1 for i in range(k.ndim) if i != k.ndim - 2})
        v = v.rechunk({i: -1 for i in range(v.ndim) if i != v.ndim - 2})
        kd, vd = k.to_delayed().reshape(-1), v.to_delayed().reshape(-1)
        offs = np.concatenate([[0], np.cumsum(k.chunks[-2])])
        return ([(kd[i], vd[i], int(offs[i]), int(c)) for i, c in enumerate(k.chunks[-2])], int(offs[-1]),
                int(v.shape[-1]))
    k, v = np.asarray(k), np.asarray(v)
    lk = k.shape[-2]
    n = key_shards or max(1, n_workers)
    n = integer("key_shards", n, minimum=1, maximum=max(1, lk))
    bounds = np.linspace(0, lk, n + 1).astype(int)
    return ([(k[..., a:b, :], v[..., a:b, :], int(a), int(b - a)) for a, b in zip(bounds[:-1], bounds[1:])], lk,
            int(v.shape[-1]))


def _mask_block(mask, lq: int, lk: int, rows: slice, cols: slice):
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != bool or m.ndim < 2:
        raise DataError(f"mask: expected a boolean array (..., Lq, Lk), got {m.dtype} {m.shape}")
    r = rows if m.shape[-2] == lq else slice(None)
    c = cols if m.shape[-1] == lk else slice(None)
    return np.ascontiguousarray(m[..., r, c])


def attend(mechanism, q, k, v, *, mask=None, client=None, scheduler: str | None = None,
           query_block: int = QUERY_BLOCK, key_shards: int | None = None, return_lse: bool = False,
           **params):
    """Exact ``mechanism(q, k, v)`` computed on a Dask cluster by query blocks × key shards.

    ``mechanism`` a registered name (built with ``params``) or a Mechanism that can run by key
    shards (:attr:`~workbench.Mechanism.not_shardable` is None); ``q (..., Lq, d)`` a NumPy or Dask
    array; ``k (..., Lk, d)``, ``v (..., Lk, dv)`` NumPy arrays (split into ``key_shards``, default
    one per worker), Dask arrays (their chunks along the key axis are the shards) or lists of
    ``.npy`` paths, one per shard, read where the task runs; ``mask (..., Lq, Lk)`` bool (may
    broadcast). ``client``/``scheduler``: see :func:`workbench.distributed.cluster.get_client`.
    Returns the output ``(..., Lq, dv)`` (NumPy, the dtype of ``q``), and ``lse (..., Lq)`` with
    ``return_lse``.
    """
    mech = _mechanism(mechanism, params)
    qb = integer("query_block", query_block, minimum=1)
    cl = get_client(client, scheduler)
    try:
        return _attend(mech, cl, q, k, v, mask, qb, key_shards, return_lse)
    finally:
        if client is None and (scheduler or os.environ.get(ENV)):
            cl.close()  # a connection made for this call; the embedded cluster stays for the next


def _attend(mech, cl, q, k, v, mask, qb, key_shards, return_lse):
    import dask

    n_workers = max(1, len(cl.scheduler_info().get("workers", {})))
    if hasattr(q, "compute") and hasattr(q, "chunks"):
        q = q.compute()
    q = np.asarray(q)
    if q.ndim < 2:
        raise ShapeError(f"q: expected (..., Lq, d), got shape {q.shape}")
    shards, lk, dv = _key_shards(k, v, key_shards, n_workers)
    lq, d = q.shape[-2], q.shape[-1]
    mech.check_sharded(lq, lk)
    delayed_mech = dask.delayed(mech, pure=True)

    def data(x):
        # NumPy pieces travel inside the task graph: the scheduler keeps them, so a lost worker's tasks
        # can be rerun (scattered data would die with it); Dask chunks keep their own lineage and
        # paths are read where the task runs
        return dask.delayed(np.ascontiguousarray(x), pure=True) if isinstance(x, np.ndarray) else x

    # each shard wrapped once: every query block's tasks share it
    shards = [(data(ks), data(vs), off, n) for ks, vs, off, n in shards]
    merged = []
    for q0 in range(0, lq, qb):
        rows = slice(q0, min(lq, q0 + qb))
        qd = data(q[..., rows, :])
        parts = [dask.delayed(_partial, pure=True)(delayed_mech, qd, ks, vs,
                                                   _mask_block(mask, lq, lk, rows, slice(off, off + n)), q0, off)
                 for ks, vs, off, n in shards]
        while len(parts) > 1:  # a balanced tree of exact pairwise merges
            parts = [dask.delayed(merge_partials, pure=True)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        merged.append(dask.delayed(_finish, pure=True)(delayed_mech, parts[0], d, dv, q.dtype))
    with warnings.catch_warnings():  # NumPy pieces ride in the graph on purpose (see the module docstring)
        warnings.filterwarnings("ignore", message="Sending large graph")
        futures = cl.compute(merged)
    results = cl.gather(futures)
    axis = q.ndim - 2  # the query axis, counted from the front (lse may carry a head axis after it)
    out = np.concatenate([np.asarray(o) for o, _ in results], axis=axis).astype(q.dtype, copy=False)
    if not return_lse:
        return out
    return out, np.concatenate([np.asarray(lse) for _, lse in results], axis=axis)


__all__ = ["attend", "QUERY_BLOCK"]
