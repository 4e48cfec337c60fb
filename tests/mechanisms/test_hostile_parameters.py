"""Every numeric parameter of every mechanism, pushed to a hostile value, is refused with a
ConfigurationError naming it — or the call is cheap: bounds keep one call's time and memory sane.

Hostile values: the declared upper bound (or 10**9 / 1e300 where none is declared), infinity, NaN
and booleans (``True`` is not one head). The call is self-attention on 8 × 16 inputs (a kNN graph for
graph mechanisms); a guard stops a case that would run away (it fails the test instead of hanging
the suite: the bounds are what make every case return at once)."""
from __future__ import annotations

import math
import signal

import numpy as np
import param
import pytest

import workbench
from workbench.autograph import call_with_graph
from workbench.errors import ConfigurationError, WorkbenchError

GUARD_S = 60  # far above any real case (each finishes in well under a second); a hang guard only
FREE = {"seed", "causal_offset"}  # any integer is fine: a seed, an offset


def _cases():
    for name, info in workbench.registry.items():
        for pname, p in info.parameters.items():
            if not isinstance(p, param.Number) or pname in FREE:
                continue
            integer = isinstance(p, param.Integer)
            hi = None if p.bounds is None else p.bounds[1]
            values = [hi if hi is not None else (10**9 if integer else 1e300), math.inf, math.nan, True]
            for v in values:
                yield pytest.param(name, pname, v, id=f"{name}.{pname}={v!r}")


class _Hang(Exception):
    pass


def _run(name, pname, value):
    info = workbench.registry[name]
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    mech = workbench.make(name, **{pname: value})
    call_with_graph(lambda kw: mech(x, x, x, **kw), info, x, None, "auto", 3, 0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow on the way to a refused output
@pytest.mark.parametrize("name, pname, value", list(_cases()))
def test_hostile_value_is_refused_or_cheap(name, pname, value):
    def hang(*_):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(GUARD_S)
    try:
        _run(name, pname, value)
    except ConfigurationError as exc:
        assert pname in str(exc) or "num_heads" in str(exc) or "backend" in str(exc), str(exc)
        refused = True
    except WorkbenchError:
        refused = True  # e.g. a NumericalError: the output left the finite range and was refused
    except _Hang:
        pytest.fail(f"{name}({pname}={value!r}) ran for {GUARD_S} s: it needs a bound")
    else:
        refused = False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        assert refused, f"{name} accepted {pname}={value!r}"


def test_booleans_and_non_finite_numbers_are_refused_by_name():
    with pytest.raises(ConfigurationError, match="num_heads: expected a number, got the boolean True"):
        workbench.make("multi_head", num_heads=True)
    with pytest.raises(ConfigurationError, match="capacity_factor: expected a finite number, got inf"):
        workbench.make("moe", capacity_factor=float("inf"))
    m = workbench.make("scaled_dot_product")
    m.param.update(scale=float("inf"))  # set after construction: refused at the call
    x = np.ones((2, 4), np.float32)
    with pytest.raises(ConfigurationError, match="scale: expected a finite number"):
        m(x, x, x)


@pytest.mark.parametrize("kw", [dict(num_steps=10_000, diffusion_time=1e4, integrator="euler",
                                     laplacian="unnormalized", k=64),
                                dict(diffusion_time=1e4, integrator="expm", laplacian="unnormalized", k=64)])
def test_a_diffusion_too_long_to_compute_is_refused_before_any_work(kw):
    x = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    with pytest.raises(ConfigurationError, match="diffusion_time"):
        workbench.make("diffusion", **kw)(x, x, x)


def test_a_mode_that_ignores_graphs_refuses_one():
    x = np.ones((4, 8), np.float32)
    for g in ("a string", np.zeros((2, 0), np.int64)):
        with pytest.raises(ConfigurationError, match="graph: DualSpace does not use a graph in this configuration"):
            workbench.make("dual_space")(x, x, x, graph=g)
    with pytest.raises(ConfigurationError, match="graph"):
        workbench.make("moe", experts=["scaled_dot_product", "linear"])(x, x, x, graph=np.zeros((2, 0), np.int64))
