"""A CPU stand-in for CuPy 14.2, for the tests only (never offered to users): NumPy arrays underneath, CuPy's
array rules on top, CUDA launches run as the same kernel bodies through OpenCL.

With ``PYTHONPATH=tests/cupy_standin``, ``import cupy`` finds this package, so the CuPy paths (the tests
marked gpu: ``kernels/gpu/*.py``, the ``backend == "cupy"`` branches, the mechanisms on CuPy arrays) run
on a machine without a GPU (``tests/kernels/gpu/test_cupy_standin.py`` does so in CI). Never import it
beside a real CuPy, nor into a process that is not a test of the CuPy paths: ``kernels.dispatch``
takes any ``sys.modules["cupy"].ndarray`` for a GPU array.

What it checks, as CuPy 14.2 does (``cupy/_core/core.pyx``, ``_kernel.pyx``, ``cupy/cuda/function.pyx``):

- no implicit conversion: ``ndarray.__array__`` raises, so ``np.asarray(x)``, ``np.ascontiguousarray(x)``
  or a NumPy function CuPy does not dispatch fails on a CuPy array as it does on a GPU;
- ``__array_function__`` looks the NumPy function up by module and name in CuPy and refuses it where
  CuPy lacks it; every call is bound against CuPy 14.2's signature (``cupy_signatures.json``, written by
  ``make_signatures.py`` from a real CuPy), so a keyword CuPy lacks fails; NumPy arrays as arguments
  fail (except where CuPy converts them: ``asarray``, ``array``, ``einsum``, …);
- ufuncs take ``out``, ``dtype`` and ``casting`` only (no ``where=``), and only CuPy arrays and scalars
  as operands (no NumPy arrays, lists or other objects);
- ``ndarray`` methods have CuPy's signatures (``max(axis, out, keepdims)`` has no ``initial``; sort kinds
  None or "stable"); a NumPy array assigned into a basic slice fails; other methods CuPy has are passed
  to NumPy without a signature check;
- ``RawModule``/``RawKernel`` launches: tuple grid and block within the device's limits, keywords
  ``shared_mem`` and ``stream``, dynamic shared memory over 48 KiB only after opting in through
  ``max_dynamic_shared_size_bytes`` (at most the device's opt-in). Stricter than CuPy, to catch the
  usual bugs: no Python int, float or bool arguments (CuPy passes them as 64-bit values, which an
  ``int``/``float`` parameter misreads), no non-contiguous arrays (a kernel reads raw memory). The launch
  then runs the body through OpenCL on PoCL (:mod:`._runner`), so results are checked too;
- ``cuda.Device().attributes`` are an H200's (132 multiprocessors, 227 KiB of opt-in shared memory),
  so launch plans are an H200's.

What it cannot check: real GPU timing; races (PoCL runs a block's threads one after another between
barriers and emulates the warp-level operations, so a missing barrier or a warp hazard can go
unnoticed); the 65,535 limit on the grid's y and z in practice (a launch past it is refused, but no test
here launches batches that large: the tests lower the limit instead); device memory (capacity, out of
memory, the cost of host-device copies); streams.
"""
from __future__ import annotations

import builtins
import functools
import inspect
import json
import sys
from pathlib import Path

import numpy as np

# NB: CuPy's namespace, filled in below, has all, any, bool, max, min, sum, round, abs, pow and divmod: the code
# here says builtins.NAME for those.
SIGNATURES = json.loads((Path(__file__).resolve().parent.parent / "cupy_signatures.json").read_text())
_UFUNCS = frozenset(SIGNATURES["ufuncs"])
_FUNCS = SIGNATURES["funcs"]
# ufunc methods CuPy has, with the keywords each takes besides ``out`` (cupy/_core/_kernel.pyx)
_UFUNC_KEYWORDS = {"__call__": {"dtype", "casting"}, "reduce": {"axis", "dtype", "keepdims"},
                   "accumulate": {"axis", "dtype"}}
_COMPARISONS = frozenset({"greater", "greater_equal", "less", "less_equal", "equal", "not_equal"})
# functions whose CuPy version converts NumPy array arguments itself
_TAKES_HOST_ARRAYS = frozenset({"asarray", "array", "asanyarray", "asnumpy", "einsum", "get_array_module",
                                "result_type", "can_cast", "dtype", "isscalar", "ndim", "shape"})


class StandInError(TypeError):
    """What CuPy 14.2 would refuse (a TypeError there too, or a CUDA error at launch)."""


def _fail(message: str):
    raise StandInError(message)


@functools.lru_cache(maxsize=None)
def _signature(key: str):
    """CuPy's :class:`inspect.Signature` of function ``key`` ("where", "linalg.norm"), None where unknown."""
    spec = _FUNCS.get(key)
    if spec is None:
        return None
    return inspect.Signature([inspect.Parameter(name, kind, default=None if has_default else inspect.Parameter.empty)
                              for name, kind, has_default in spec])


def _unwrap(x):
    """The NumPy array under a stand-in array, recursively through lists and tuples."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, list):
        return [_unwrap(y) for y in x]
    if isinstance(x, tuple):
        return tuple(_unwrap(y) for y in x)
    return x


def _wrap(x):
    """NumPy results as stand-in arrays: arrays, and NumPy scalars as 0-d arrays (CuPy's reductions)."""
    if isinstance(x, np.ndarray):
        return ndarray._of(x)
    if isinstance(x, np.generic) and not isinstance(x, (np.str_, np.bytes_)):
        return ndarray._of(np.asarray(x))
    if isinstance(x, list):
        return [_wrap(y) for y in x]
    if isinstance(x, tuple):  # named tuples too (linalg.eigh's, …)
        items = [_wrap(y) for y in x]
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    return x


def _refuse_host_arrays(where: str, values) -> None:
    """NumPy arrays (not 0-d) among ``values``, through lists and tuples: CuPy functions take CuPy arrays."""
    for x in values:
        if isinstance(x, np.ndarray) and x.ndim > 0:
            _fail(f"{where}: numpy.ndarray argument of shape {x.shape} (CuPy functions take CuPy arrays)")
        if isinstance(x, (list, tuple)):
            _refuse_host_arrays(where, x)


def _result(value, out):
    """``value`` as a stand-in array, or written into ``out`` (a stand-in array) and ``out``."""
    if out is None:
        return _wrap(value)
    if not isinstance(out, ndarray):
        _fail(f"out must be a CuPy array, got {type(out).__name__}")
    out._a[...] = value
    return out


def _ufunc(name: str, numpy_ufunc, method: str, inputs, kwargs, from_numpy: bool):
    """``cupy.NAME.METHOD(*inputs, **kwargs)`` under CuPy's rules (cupy/_core/_kernel.pyx), as NumPy's
    ``numpy_ufunc``. ``from_numpy``: reached through ``ndarray.__array_ufunc__`` (core.pyx), where 0-d NumPy
    arrays pass to the comparisons as scalars."""
    kwargs = dict(kwargs)
    out = kwargs.pop("out", None)
    if isinstance(out, tuple):  # NumPy hands ``out`` on as a tuple
        if len(out) != 1:
            _fail(f"cupy.{name}: the 'out' parameter must have exactly one array value")
        out = out[0]
    if name in _UFUNCS:
        allowed = _UFUNC_KEYWORDS[method] | ({"_where"} if method == "__call__" else set())
        bad = set(kwargs) - allowed
        if bad:
            _fail(f"cupy.{name}: Wrong arguments {sorted(bad)} (CuPy's ufuncs take "
                  f"{sorted(_UFUNC_KEYWORDS[method] | {'out'})})")
        if "_where" in kwargs:  # CuPy's private keyword (cupy.copyto's)
            kwargs["where"] = kwargs.pop("_where")
    else:  # a generalized ufunc (matmul): CuPy's signature
        _bind(name, inputs, kwargs if out is None else {**kwargs, "out": out})
    for x in inputs:
        if isinstance(x, np.ndarray):
            if from_numpy and name in _COMPARISONS and x.ndim == 0:
                continue
            _fail(f"cupy.{name}: numpy.ndarray operand of shape {x.shape} (CuPy: Unsupported type; no implicit "
                  f"host-to-device copy)")
        if not isinstance(x, (ndarray, np.generic, builtins.bool, builtins.int, builtins.float, builtins.complex)):
            _fail(f"cupy.{name}: operand of type {type(x).__name__} (CuPy's ufuncs take CuPy arrays and scalars)")
    if out is not None and not isinstance(out, ndarray):
        _fail(f"cupy.{name}: out must be a CuPy array, got {type(out).__name__}")
    args = [_unwrap(x) for x in inputs]
    call = getattr(numpy_ufunc, method)
    if out is None:
        return _wrap(call(*args, **kwargs))
    call(*args, out=out._a, **kwargs)
    return out


class ufunc:
    """``cupy.NAME`` of a ufunc: NumPy's behind CuPy's rules (calls, ``reduce`` and ``accumulate``)."""

    def __init__(self, name: str, numpy_ufunc):
        self.__name__, self._numpy = name, numpy_ufunc
        self.nin, self.nout, self.nargs = numpy_ufunc.nin, numpy_ufunc.nout, numpy_ufunc.nargs

    def __repr__(self):
        return f"<ufunc 'cupy.{self.__name__}' (stand-in)>"

    def __call__(self, *args, **kwargs):
        return _ufunc(self.__name__, self._numpy, "__call__", args, kwargs, from_numpy=False)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        return _ufunc(self.__name__, self._numpy, "reduce", (array,),
                      {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims}, from_numpy=False)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        return _ufunc(self.__name__, self._numpy, "accumulate", (array,), {"axis": axis, "dtype": dtype, "out": out},
                      from_numpy=False)


def _bind(key: str, args, kwargs) -> None:
    """Refuse a call that does not fit CuPy 14.2's signature of ``cupy.KEY``."""
    signature = _signature(key)
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            _fail(f"cupy.{key}: {exc} (CuPy 14.2's signature: {key}{signature})")


def _call(key: str, numpy_function, args, kwargs):
    """``cupy.KEY(*args, **kwargs)`` as NumPy's ``numpy_function`` on the arrays underneath, after CuPy's checks."""
    _bind(key, args, kwargs)
    if key.rpartition(".")[2] not in _TAKES_HOST_ARRAYS:
        _refuse_host_arrays(f"cupy.{key}", (*args, *kwargs.values()))
    implementation = getattr(numpy_function, "_implementation", numpy_function)  # NumPy's, without dispatch
    return _wrap(implementation(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))


def _function(key: str, numpy_function):
    """``cupy.KEY`` made of NumPy's ``numpy_function`` (a class stays itself, a ufunc becomes a :class:`ufunc`)."""
    name = key.rpartition(".")[2]
    if numpy_function is None or isinstance(numpy_function, type):
        return numpy_function
    if isinstance(numpy_function, np.ufunc) and key in _UFUNCS:
        return ufunc(name, numpy_function)

    def function(*args, **kwargs):
        return _call(key, numpy_function, args, kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"cupy.{key} of the stand-in: numpy's behind CuPy 14.2's rules."
    return function


def _attribute(name: str, wrap: bool = False):
    """A read-only property: the NumPy array's attribute ``name`` (as a stand-in array where ``wrap``)."""
    if wrap:
        return property(lambda self: ndarray._of(getattr(self._a, name)))
    return property(lambda self: getattr(self._a, name))


def _operators(numpy_ufunc):
    """``x op y``, ``y op x`` and ``x op= y`` through NumPy's ufunc (so through ``ndarray.__array_ufunc__``)."""

    def forward(self, other):
        return numpy_ufunc(self, other)

    def reflected(self, other):
        return numpy_ufunc(other, self)

    def inplace(self, other):
        return numpy_ufunc(self, other, out=(self,))

    return forward, reflected, inplace


class ndarray:
    """A CuPy array on the CPU: a NumPy array ``_a`` behind CuPy 14.2's interface and rules."""

    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            _fail("cupy.ndarray: memptr and strides are not supported by the stand-in")
        self._a = np.empty(shape, dtype, order=order)

    @classmethod
    def _of(cls, a: np.ndarray) -> "ndarray":
        self = cls.__new__(cls)
        self._a = a
        return self

    # -- conversions (core.pyx: no implicit ones) --

    def __array__(self, dtype=None, copy=None):
        _fail("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array "
              "explicitly.")

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self._a.ctypes.data, False), "version": 3}

    def get(self, stream=None, order="C", out=None, blocking=True):
        """A NumPy copy (the only way to the host, with ``cupy.asnumpy``)."""
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order)

    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __complex__(self):
        return complex(self._a)

    def __bool__(self):
        return builtins.bool(self._a)

    def __index__(self):
        _fail("a CuPy array is not a Python index (operator.index): use int(x) or x.item()")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # -- attributes --

    shape = _attribute("shape")
    ndim = _attribute("ndim")
    dtype = _attribute("dtype")
    size = _attribute("size")
    nbytes = _attribute("nbytes")
    itemsize = _attribute("itemsize")
    strides = _attribute("strides")
    flags = _attribute("flags")
    T = _attribute("T", wrap=True)
    mT = _attribute("mT", wrap=True)
    real = _attribute("real", wrap=True)
    imag = _attribute("imag", wrap=True)

    # -- methods, with CuPy 14.2's signatures (core.pyx) --

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        kwargs = {} if casting is None else {"casting": casting}
        return ndarray._of(self._a.astype(dtype, order=order, copy=copy, **kwargs))

    def copy(self, order="C"):
        return ndarray._of(self._a.copy(order=order))

    def reshape(self, *shape, order="C", copy=None):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ndarray._of(self._a.reshape(shape, order=order))

    def transpose(self, *axes):
        return ndarray._of(self._a.transpose(*axes))

    def swapaxes(self, axis1, axis2):
        return ndarray._of(self._a.swapaxes(axis1, axis2))

    def flatten(self, order="C"):
        return ndarray._of(self._a.flatten(order))

    def ravel(self, order="C"):
        return ndarray._of(self._a.ravel(order))

    def squeeze(self, axis=None):
        return ndarray._of(self._a.squeeze(axis))

    def take(self, indices, axis=None, out=None):
        return _result(self._a.take(_unwrap(indices), axis=axis), out)

    def repeat(self, repeats, axis=None):
        return ndarray._of(self._a.repeat(_unwrap(repeats), axis))

    def sort(self, axis=-1, kind=None):
        self._a.sort(axis=axis, kind=_sort_kind(kind))

    def argsort(self, axis=-1, kind=None):
        return ndarray._of(self._a.argsort(axis=axis, kind=_sort_kind(kind)))

    def partition(self, kth, axis=-1):
        self._a.partition(kth, axis)

    def argpartition(self, kth, axis=-1):
        return ndarray._of(self._a.argpartition(kth, axis))

    def nonzero(self):
        return tuple(ndarray._of(i) for i in self._a.nonzero())

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return ndarray._of(self._a.diagonal(offset, axis1, axis2))

    def max(self, axis=None, out=None, keepdims=False):
        return _result(self._a.max(axis=axis, keepdims=keepdims), out)

    def min(self, axis=None, out=None, keepdims=False):
        return _result(self._a.min(axis=axis, keepdims=keepdims), out)

    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        return _result(self._a.argmax(axis=axis, keepdims=keepdims), out)

    def argmin(self, axis=None, out=None, dtype=None, keepdims=False):
        return _result(self._a.argmin(axis=axis, keepdims=keepdims), out)

    def clip(self, min=None, max=None, out=None):
        return _result(self._a.clip(_unwrap(min), _unwrap(max)), out)

    def round(self, decimals=0, out=None):
        return _result(self._a.round(decimals), out)

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return _result(self._a.sum(axis=axis, dtype=dtype, keepdims=keepdims), out)

    def cumsum(self, axis=None, dtype=None, out=None):
        return _result(self._a.cumsum(axis=axis, dtype=dtype), out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return _result(self._a.mean(axis=axis, dtype=dtype, keepdims=keepdims), out)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _result(self._a.var(axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims), out)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _result(self._a.std(axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims), out)

    def prod(self, axis=None, dtype=None, out=None, keepdims=None):
        return _result(self._a.prod(axis=axis, dtype=dtype, keepdims=bool(keepdims)), out)

    def all(self, axis=None, out=None, keepdims=False):
        return _result(self._a.all(axis=axis, keepdims=keepdims), out)

    def any(self, axis=None, out=None, keepdims=False):
        return _result(self._a.any(axis=axis, keepdims=keepdims), out)

    def fill(self, value):
        self._a.fill(value)

    def item(self):
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def view(self, dtype=None, type=None):
        return ndarray._of(self._a.view() if dtype is None else self._a.view(dtype))

    def conj(self):
        return ndarray._of(self._a.conj())

    def dot(self, b, out=None):
        if not isinstance(b, ndarray):
            _fail(f"ndarray.dot: b must be a CuPy array, got {type(b).__name__}")
        return _result(self._a.dot(b._a), out)

    def __getattr__(self, name):
        """The other methods CuPy's ndarray has, passed to NumPy's (no signature check)."""
        if name.startswith("_") or name not in SIGNATURES["methods"] or not callable(getattr(np.ndarray, name, None)):
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")
        method = getattr(self._a, name)

        def forwarded(*args, **kwargs):
            _refuse_host_arrays(f"ndarray.{name}", (*args, *kwargs.values()))
            return _wrap(method(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

        return forwarded

    # -- indexing --

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        index = _unwrap(index)
        if isinstance(value, np.ndarray) and value.ndim > 0:
            items = index if isinstance(index, tuple) else (index,)
            if not builtins.any(isinstance(i, (np.ndarray, list)) for i in items):
                _fail("a numpy.ndarray assigned into a basic slice of a CuPy array (core.pyx _scatter_op: fill "
                      "refuses host arrays)")
        self._a[index] = _unwrap(value)

    # -- the NumPy protocols (core.pyx __array_ufunc__, __array_function__) --

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__
        if (name not in _UFUNCS and name not in _FUNCS) or method not in _UFUNC_KEYWORDS:
            return NotImplemented
        return _ufunc(name, ufunc, method, inputs, kwargs, from_numpy=True)

    def __array_function__(self, func, types, args, kwargs):
        path = func.__module__.split(".")[1:]  # as CuPy: functools.reduce(getattr, path, cupy)
        if path and path[0] not in ("linalg", "fft", "random"):
            return NotImplemented
        key = ".".join([*path, func.__name__])
        if key not in _FUNCS and key not in _UFUNCS:
            return NotImplemented  # NumPy raises: no implementation found for 'numpy.…'
        if not builtins.all(issubclass(t, (ndarray, np.ndarray)) for t in types):
            return NotImplemented
        return _call(key, func, args, kwargs)

    # -- operators, through NumPy's ufuncs (so through __array_ufunc__) --

    __add__, __radd__, __iadd__ = _operators(np.add)
    __sub__, __rsub__, __isub__ = _operators(np.subtract)
    __mul__, __rmul__, __imul__ = _operators(np.multiply)
    __truediv__, __rtruediv__, __itruediv__ = _operators(np.true_divide)
    __floordiv__, __rfloordiv__, __ifloordiv__ = _operators(np.floor_divide)
    __mod__, __rmod__, __imod__ = _operators(np.remainder)
    __pow__, __rpow__, __ipow__ = _operators(np.power)
    __matmul__, __rmatmul__ = _operators(np.matmul)[:2]
    __and__, __rand__, __iand__ = _operators(np.bitwise_and)
    __or__, __ror__, __ior__ = _operators(np.bitwise_or)
    __xor__, __rxor__, __ixor__ = _operators(np.bitwise_xor)
    __lt__, __le__ = _operators(np.less)[0], _operators(np.less_equal)[0]
    __gt__, __ge__ = _operators(np.greater)[0], _operators(np.greater_equal)[0]
    __eq__, __ne__ = _operators(np.equal)[0], _operators(np.not_equal)[0]

    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return np.absolute(self)

    def __invert__(self):
        return np.invert(self)


def _sort_kind(kind):
    if kind is not None and kind != "stable":
        _fail(f"ndarray.sort/argsort: kind={kind!r}; CuPy takes only None or 'stable'")
    return "stable"


# -- module functions: CuPy 14.2's, made of NumPy's; creation and transfer written out ----------------


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    return ndarray._of(np.asarray(_unwrap(a), dtype=dtype, order=order, copy=copy))


asanyarray = asarray


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    return ndarray._of(np.array(_unwrap(obj), dtype=dtype, copy=copy, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):  # _core.ascontiguousarray takes an _ndarray_base
        _fail(f"cupy.ascontiguousarray: a must be a CuPy array, got {type(a).__name__}")
    return ndarray._of(np.ascontiguousarray(a._a, dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    if out is not None:
        out[...] = _unwrap(a)
        return out
    return np.array(_unwrap(a), order=order)


def get_array_module(*args):
    return sys.modules[__name__] if builtins.any(isinstance(a, ndarray) for a in args) else np


def empty(shape, dtype=float, order="C"):
    return ndarray._of(np.empty(shape, dtype, order))


def zeros(shape, dtype=float, order="C"):
    return ndarray._of(np.zeros(shape, dtype, order))


def ones(shape, dtype=float, order="C"):
    return ndarray._of(np.ones(shape, dtype, order))


def full(shape, fill_value, dtype=None, order="C"):
    return ndarray._of(np.full(shape, _unwrap(fill_value), dtype, order))


def arange(start, stop=None, step=1, dtype=None):
    return ndarray._of(np.arange(start, stop, step, dtype=dtype))


for _key in [*_FUNCS, *SIGNATURES["ufuncs"]]:
    if "." not in _key and _key not in globals():
        _made = _function(_key, getattr(np, _key, None))
        if _made is not None:
            globals()[_key] = _made

for _name in ("bool_", "int8", "int16", "int32", "int64", "intp", "uint8", "uint16", "uint32", "uint64", "float16",
              "float32", "float64", "complex64", "complex128", "dtype", "finfo", "iinfo", "integer", "floating",
              "number", "generic", "broadcast_shapes"):
    globals()[_name] = getattr(np, _name)
inf, nan, pi, e, newaxis = np.inf, np.nan, np.pi, np.e, None
__version__ = "14.2.0"

from . import cuda, linalg  # noqa: E402  (they use the functions above)
from ._runner import RawKernel, RawModule  # noqa: E402

__all__ = ["RawKernel", "RawModule", "SIGNATURES", "StandInError", "cuda", "linalg", "ndarray"]
