"""workbench.distributed.attend on a LocalCluster of 2 worker processes over TCP on loopback:
equal to the single-process call (NumPy arrays, Dask arrays, .npy shard files; uneven shards,
masks, causal), a worker killed mid-run, a scheduler that does not answer, refusals."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

import workbench
from workbench.distributed import attend, connect
from workbench.errors import ConfigurationError

distributed = pytest.importorskip("distributed")


def data(seed, lq=300, lk=1001, d=16, dv=8, lead=(2,)):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(lead + (lq, d)).astype(np.float32)
    k = rng.standard_normal(lead + (lk, d)).astype(np.float32)
    v = rng.standard_normal(lead + (lk, dv)).astype(np.float32)
    return q, k, v


@pytest.mark.parametrize("name", ["scaled_dot_product", "flash"])
def test_numpy_inputs_uneven_shards_masks_and_causal(client, name):
    q, k, v = data(0)
    mask = np.random.default_rng(1).random((2, 300, 1001)) > 0.2
    for kw in ({}, {"causal": True, "causal_offset": 701}):
        want = workbench.make(name, **kw)(q, k, v, mask=mask)
        got = attend(name, q, k, v, mask=mask, client=client, key_shards=3, query_block=128, **kw)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-6)
    out, lse = attend(name, q, k, v, client=client, key_shards=4, return_lse=True)
    _, want_lse = workbench.make("flash")(q, k, v, return_lse=True)
    np.testing.assert_allclose(lse, want_lse, atol=1e-5)


def test_dask_arrays_with_uneven_chunks(client):
    import dask.array as da

    q, k, v = data(2, lead=())
    dk = da.from_array(k, chunks=(137, -1))
    dv = da.from_array(v, chunks=(500, -1))  # rechunked to the keys' shards
    got = attend("scaled_dot_product", da.from_array(q, chunks=(64, -1)), dk, dv, client=client)
    np.testing.assert_allclose(got, workbench.make("scaled_dot_product")(q, k, v), atol=2e-6)


def test_npy_shard_files_are_read_where_the_task_runs(client, tmp_path):
    q, k, v = data(3, lead=())
    ks, vs = [], []
    for i, (a, b) in enumerate(((0, 400), (400, 401), (401, 1001))):
        np.save(tmp_path / f"k{i}.npy", k[a:b])
        np.save(tmp_path / f"v{i}.npy", v[a:b])
        ks.append(str(tmp_path / f"k{i}.npy"))
        vs.append(tmp_path / f"v{i}.npy")
    got = attend("flash", q, ks, vs, client=client)
    np.testing.assert_allclose(got, workbench.make("flash")(q, k, v), atol=2e-6)


def test_a_worker_killed_mid_run_still_gives_the_right_answer(client):
    q, k, v = data(4, lq=2048, lk=16384, d=64, dv=64, lead=())
    want = workbench.make("flash", backend="numpy")(q, k, v)
    result, pending_at_kill = {}, []

    def run():
        result["out"] = attend("flash", q, k, v, client=client, key_shards=8, query_block=512, backend="numpy")

    pids = client.run(os.getpid)  # worker address -> process id
    t = threading.Thread(target=run)
    t.start()
    deadline = time.time() + 60
    while time.time() < deadline and not client.processing():
        time.sleep(0.05)
    time.sleep(0.5)
    busy = [w for w, tasks in client.processing().items() if tasks]
    pending_at_kill.append(sum(len(t) for t in client.processing().values()))
    os.kill(pids[busy[0]], signal.SIGKILL)  # the nanny restarts it; Dask reruns its tasks elsewhere
    t.join(timeout=300)
    assert pending_at_kill[0] > 0, "the run finished before the kill: nothing was tested"
    np.testing.assert_allclose(result["out"], want, atol=2e-6)
    client.wait_for_workers(2, timeout=60)


def test_a_scheduler_that_does_not_answer_fails_within_seconds():
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(ConfigurationError, match=f"scheduler: tcp://127.0.0.1:{port} did not answer"):
        connect(f"tcp://127.0.0.1:{port}", timeout=2)
    assert time.perf_counter() - t0 < 15
    with pytest.raises(ConfigurationError, match="scheduler: expected an address"):
        connect("localhost")


def test_refusals(client):
    q, k, v = data(5, lead=())
    with pytest.raises(ConfigurationError, match="lorentz_cascade cannot run by key shards"):
        attend("lorentz_cascade", q, k, v, client=client)
    with pytest.raises(ConfigurationError, match="query_block"):
        attend("flash", q, k, v, client=client, query_block=0)
    with pytest.raises(ConfigurationError, match="client"):
        attend("flash", q, k, v, client=object())


def test_the_scheduler_setting_is_used_without_a_client(client, monkeypatch):
    q, k, v = data(6, lead=())
    monkeypatch.setenv("WORKBENCH_DASK_SCHEDULER", client.scheduler.address)
    np.testing.assert_allclose(attend("flash", q, k, v), workbench.make("flash")(q, k, v), atol=2e-6)


def test_multi_head_with_trained_weights_by_shards(client):
    rng = np.random.default_rng(7)
    q, k, v = data(7, lead=())
    sd = {n: rng.standard_normal((16, 16)).astype(np.float32) / 4 for n in ("W_q", "W_k", "W_o")}
    sd.update(W_v=rng.standard_normal((8, 8)).astype(np.float32) / 3, b_q=rng.standard_normal(16), b_o=np.ones(8))
    sd["W_o"] = rng.standard_normal((8, 8)) / 3
    mech = workbench.make("multi_head", num_heads=4).load_weights(sd)
    got, lse = attend(mech, q, k, v, client=client, key_shards=3, query_block=100, return_lse=True)
    np.testing.assert_allclose(got, mech(q, k, v), atol=3e-6)
    assert lse.shape == (300, 4)  # one log-sum-exp per head


def test_linear_by_summed_key_statistics(client):
    q, k, v = data(8)
    m = workbench.make("linear", num_features=64)
    np.testing.assert_allclose(attend(m, q, k, v, client=client, key_shards=5), m(q, k, v), atol=2e-6)


def test_the_cli_runs_sharded_files_on_a_given_scheduler(client, tmp_path, capsys):
    from workbench.cli import main

    q, k, v = data(9, lead=())
    for name, a in (("q", q), ("k0", k[:500]), ("k1", k[500:]), ("v0", v[:500]), ("v1", v[500:])):
        np.save(tmp_path / f"{name}.npy", a)
    p = lambda n: str(tmp_path / f"{n}.npy")  # noqa: E731
    rc = main(["attend", "flash", "--q", p("q"), "--k", p("k0"), p("k1"), "--v", p("v0"), p("v1"),
               "--out", p("out"), "--scheduler", client.scheduler.address])
    assert rc == 0 and "300 queries" in capsys.readouterr().out
    np.testing.assert_allclose(np.load(p("out")), workbench.make("flash")(q, k, v), atol=2e-6)
    rc = main(["attend", "lorentz_cascade", "--q", p("q"), "--k", p("k0"), "--v", p("v0"), "--out", p("x"),
               "--scheduler", client.scheduler.address])
    assert rc == 2 and "cannot run by key shards" in capsys.readouterr().err


def test_hyperbolic_by_shards(client):
    q, k, v = data(10)
    v = 0.3 * v
    m = workbench.make("hyperbolic", c=0.5)
    np.testing.assert_allclose(attend(m, q, k, v, client=client, key_shards=3, query_block=128), m(q, k, v), atol=3e-5)


def test_sliced_wasserstein_and_local_global_by_shards(client):
    q, k, v = data(11, lq=400, lk=400)
    mask = np.random.default_rng(3).random((2, 400, 400)) > 0.1
    sw = workbench.make("sliced_wasserstein", temperature=0.5)
    np.testing.assert_allclose(attend(sw, q, k, v, mask=mask, client=client, key_shards=3, query_block=96),
                               sw(q, k, v, mask=mask), atol=2e-6)
    for kw in ({"window": 16}, {"window": 9, "num_global_tokens": 3, "causal": True}):
        lg = workbench.make("local_global", **kw)
        np.testing.assert_allclose(attend(lg, q, k, v, mask=mask, client=client, key_shards=5, query_block=64),
                                   lg(q, k, v, mask=mask), atol=2e-6)
    with pytest.raises(workbench.errors.ShapeError, match="Lq == Lk"):
        attend("local_global", q[:, :100], k, v, client=client)
