"""Every registered mechanism, on both CPU backends, rejects bad input with the right error class
and a message that names the offending argument."""
from __future__ import annotations

import re

import numpy as np
import pytest

import workbench
from workbench.errors import ConfigurationError, NumericalError, ShapeError, WorkbenchError

BACKENDS = ("numpy", "numba")
D, DV, L, B = 8, 4, 6, 2

#: Sensible parameters per mechanism for d = 8 (multi_head needs d % num_heads == 0).
PARAMS = {"multi_head": {"num_heads": 2}}


def build(name, backend, **extra):
    return workbench.make(name, backend=backend, **{**PARAMS.get(name, {}), **extra})


def names_arg(msg: str, arg: str) -> bool:
    """True if ``arg`` appears in ``msg`` as a whole word (so "k" does not match "keys")."""
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(arg)}(?![A-Za-z0-9_])", msg) is not None


def check(excinfo, cls, *args):
    assert excinfo.type is cls or issubclass(excinfo.type, cls), excinfo.type
    assert issubclass(excinfo.type, WorkbenchError)
    msg = str(excinfo.value)
    for arg in args:
        assert names_arg(msg, arg), f"message does not name {arg!r}: {msg!r}"


def inputs(dtype=np.float32, b=B, lq=L, lk=L, d=D, dv=DV, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, lq, d)).astype(dtype),
            rng.standard_normal((b, lk, d)).astype(dtype),
            rng.standard_normal((b, lk, dv)).astype(dtype))


@pytest.fixture(params=[(n, be) for n in workbench.list_mechanisms() for be in BACKENDS
                        if workbench.registry[n].backends.get(be) is None],
                ids=lambda p: f"{p[0]}-{p[1]}")
def mech(request):
    name, backend = request.param
    return build(name, backend)


@pytest.mark.parametrize("name,backend", [(n, be) for n in workbench.list_mechanisms() for be in BACKENDS
                                          if workbench.registry[n].backends.get(be) is not None])
def test_unsupported_backend_says_why(name, backend):
    q, k, v = inputs()
    with pytest.raises(ConfigurationError, match="backend") as excinfo:
        build(name, backend)(q, k, v)
    assert workbench.registry[name].backends[backend] in str(excinfo.value)


def test_every_mechanism_is_covered():
    assert set(workbench.list_mechanisms()) >= {"scaled_dot_product", "multi_head", "flash", "linear",
                                                 "local_global"}


# --- shapes ------------------------------------------------------------------------------------

def test_q_zero_dim(mech):
    _, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(np.float32(1.0), k[0], v[0])
    check(e, ShapeError, "q")


def test_k_one_dim_with_two_dim_q(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q[0], k[0, 0], v[0])
    check(e, ShapeError, "k")


def test_k_not_two_dim_with_one_dim_q(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q[0, 0], k, v)  # a 1-D query needs k (n, d)
    check(e, ShapeError, "k")


def test_v_one_dim(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q[0], k[0], v[0, :, 0])
    check(e, ShapeError, "v")


def test_mismatched_feature_dim(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k[..., :D - 2], v)
    check(e, ShapeError, "k")


def test_mismatched_feature_dim_weights(mech):
    q, k, _ = inputs()
    with pytest.raises(ShapeError) as e:
        mech.weights(q, k[..., :D - 2])
    check(e, ShapeError, "k")


def test_mismatched_key_count(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, v[:, :L - 1])
    check(e, ShapeError, "v")


def test_empty_keys(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k[:, :0], v[:, :0])
    check(e, ShapeError, "k")


def test_empty_keys_weights(mech):
    q, k, _ = inputs()
    with pytest.raises(ShapeError) as e:
        mech.weights(q, k[:, :0])
    check(e, ShapeError, "k")


def test_empty_queries(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q[:, :0], k, v)
    check(e, ShapeError, "q")


def test_zero_feature_dim(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q[..., :0], k[..., :0], v)
    check(e, ShapeError, "q")


def test_zero_value_dim(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, v[..., :0])
    check(e, ShapeError, "v")


def test_non_broadcastable_batch_dims(mech):
    q, k, v = inputs()
    k3 = np.concatenate([k, k[:1]])  # batch 3 against q's batch 2
    v3 = np.concatenate([v, v[:1]])
    with pytest.raises(ShapeError) as e:
        mech(q, k3, v3)
    check(e, ShapeError, "q", "k")


def test_non_broadcastable_value_batch(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, np.concatenate([v, v[:1]]))
    check(e, ShapeError, "v")


@pytest.mark.parametrize("bad", ["abc", None, np.array([object()])], ids=["str", "none", "object"])
def test_non_numeric_input(mech, bad):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, bad)
    check(e, ShapeError, "v")


@pytest.mark.parametrize("bad", [[[1.0, 2.0], [3.0]], [[[1.0]], [2.0, 3.0]]], ids=["ragged", "ragged_deep"])
def test_ragged_input_is_shape_error(mech, bad):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, bad)
    check(e, ShapeError, "v")
    with pytest.raises(ShapeError) as e:
        mech(bad, k, v)
    check(e, ShapeError, "q")


def test_ragged_mask_is_shape_error(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, v, mask=[[True] * L, [True]])
    check(e, ShapeError, "mask")


# --- non-finite values -------------------------------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("which", ["q", "k", "v"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite(mech, which, value, dtype):
    arrays = dict(zip("qkv", inputs(dtype)))
    arrays[which][1, 2, 3 if which != "v" else 1] = value
    with pytest.raises(NumericalError) as e:
        mech(arrays["q"], arrays["k"], arrays["v"])
    check(e, NumericalError, which)


@pytest.mark.parametrize("which", ["q", "k"])
def test_non_finite_weights(mech, which):
    arrays = dict(zip("qk", inputs()[:2]))
    arrays[which][0, 0, 0] = np.nan
    with pytest.raises(NumericalError) as e:
        mech.weights(arrays["q"], arrays["k"])
    check(e, NumericalError, which)


# --- masks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(L, L + 1), (L + 1,), (3, L, L), (L - 1, L), (B, 1, L, L)],
                         ids=str)
def test_mask_wrong_shape(mech, shape):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, v, mask=np.ones(shape, dtype=bool))
    check(e, ShapeError, "mask")


def test_mask_wrong_shape_weights(mech):
    q, k, _ = inputs()
    with pytest.raises(ShapeError) as e:
        mech.weights(q, k, mask=np.ones((L, L + 1), dtype=bool))
    check(e, ShapeError, "mask")


@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.uint8], ids=lambda t: np.dtype(t).name)
def test_mask_not_boolean(mech, dtype):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, v, mask=np.ones((L, L), dtype=dtype))
    check(e, ShapeError, "mask")


def test_mask_not_boolean_weights(mech):
    q, k, _ = inputs()
    with pytest.raises(ShapeError) as e:
        mech.weights(q, k, mask=np.ones((L, L), dtype=np.int8))
    check(e, ShapeError, "mask")


def test_mask_list_of_ints_rejected(mech):
    q, k, v = inputs()
    with pytest.raises(ShapeError) as e:
        mech(q, k, v, mask=[[1] * L] * L)
    check(e, ShapeError, "mask")


# --- parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, params, arg",
    [
        ("multi_head", {"num_heads": 0}, "num_heads"),
        ("multi_head", {"num_heads": -2}, "num_heads"),
        ("multi_head", {"num_heads": "2"}, "num_heads"),
        ("flash", {"block_size": 0}, "block_size"),
        ("flash", {"query_block_size": 0}, "query_block_size"),
        ("linear", {"num_features": -1}, "num_features"),
        ("linear", {"num_features": 0}, "num_features"),
        ("linear", {"kernel": "bogus"}, "kernel"),
        ("local_global", {"window": 0}, "window"),
        ("local_global", {"num_global_tokens": -1}, "num_global_tokens"),
    ],
    ids=lambda x: str(x) if not isinstance(x, dict) else ",".join(f"{k}={v}" for k, v in x.items()),
)
def test_bad_parameter_at_make(name, params, arg):
    with pytest.raises(ConfigurationError) as e:
        workbench.make(name, **params)
    check(e, ConfigurationError, arg)


@pytest.mark.parametrize("name", workbench.list_mechanisms())
@pytest.mark.parametrize("scale", [-1.0, 0.0])
def test_non_positive_scale(name, scale):
    with pytest.raises(ConfigurationError) as e:
        workbench.make(name, **PARAMS.get(name, {}), scale=scale)
    check(e, ConfigurationError, "scale")


@pytest.mark.parametrize("name", workbench.list_mechanisms())
def test_unknown_parameter(name):
    with pytest.raises(ConfigurationError) as e:
        workbench.make(name, bogus_param=1)
    check(e, ConfigurationError, "bogus_param")


@pytest.mark.parametrize("name", workbench.list_mechanisms())
def test_unknown_backend_name(name):
    with pytest.raises(ConfigurationError) as e:
        workbench.make(name, backend="tpu")
    check(e, ConfigurationError, "backend")


def test_unknown_mechanism():
    with pytest.raises(ConfigurationError) as e:
        workbench.make("no_such_mechanism")
    check(e, ConfigurationError, "name")
    assert "no_such_mechanism" in str(e.value)


def test_unknown_mechanism_registry_lookup():
    with pytest.raises(ConfigurationError):
        workbench.registry["no_such_mechanism"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("d, h", [(10, 3), (8, 3), (6, 4)])
def test_num_heads_must_divide_d(backend, d, h):
    mech = workbench.make("multi_head", num_heads=h, backend=backend)  # fine at make()
    q, k, v = inputs(d=d, dv=h * 2)
    with pytest.raises(ConfigurationError) as e:
        mech(q, k, v)
    check(e, ConfigurationError, "num_heads")
    with pytest.raises(ConfigurationError) as e:
        mech.weights(q, k)
    check(e, ConfigurationError, "num_heads")


@pytest.mark.parametrize("backend", BACKENDS)
def test_num_heads_must_divide_dv(backend):
    mech = workbench.make("multi_head", num_heads=2, backend=backend)
    q, k, v = inputs(d=8, dv=3)
    with pytest.raises(ConfigurationError) as e:
        mech(q, k, v)
    check(e, ConfigurationError, "num_heads")


@pytest.mark.parametrize("name", workbench.list_mechanisms())
def test_cupy_backend_with_numpy_arrays(name):
    mech = build(name, "cupy")
    q, k, v = inputs()
    with pytest.raises(ConfigurationError) as e:
        mech(q, k, v)
    check(e, ConfigurationError, "backend")
    with pytest.raises(ConfigurationError) as e:
        mech.weights(q, k) if name not in ("linear", "local_global") else mech(q, k, v)
    check(e, ConfigurationError, "backend")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, params", [("local_global", dict(window=4, causal=False)),
                                          ("local_global", dict(window=4, causal=True))]
                         + [("linear", dict(causal=True, kernel=kernel, num_features=16))
                            for kernel in ("favor+", "relu", "elu+1")])
def test_local_global_and_causal_linear_need_equal_lengths(backend, name, params):
    mech = workbench.make(name, backend=backend, **params)
    q, k, v = inputs(lq=5, lk=7)
    with pytest.raises(ShapeError) as e:
        mech(q, k, v)
    check(e, ShapeError, "q", "k")
    with pytest.raises(ShapeError) as e:
        mech.weights(q, k)
    check(e, ShapeError, "q", "k")


def test_error_classes_are_workbench_errors():
    for cls in (ShapeError, ConfigurationError, NumericalError, workbench.errors.DataError):
        assert issubclass(cls, WorkbenchError)
    assert issubclass(ShapeError, ValueError) and issubclass(ConfigurationError, ValueError)
    assert issubclass(NumericalError, ArithmeticError)


def test_overflowing_output_is_numerical_error():
    """Finite but huge float32 values overflow the logits: the result check names the output."""
    mech = workbench.make("scaled_dot_product", backend="numpy")
    q, k, v = inputs()
    with pytest.raises(NumericalError), np.errstate(all="ignore"):
        mech(q * np.float32(1e30), k * np.float32(1e30), v)
