"""Trained weights in and out of a mechanism: sources, key maps, checks.

A mechanism with learned parameters names them (:attr:`Mechanism.learned_weights`) in the ``x @ W``
convention of this library (``W (d_in, d_out)``, biases ``(d_out,)``): ``multi_head`` (``W_q, W_k,
W_v, W_o`` and biases), ``edge_featured`` (GAT/GATv2 projections, attention vectors, biases),
``dual_space`` (``W_E, W_H, W_O``), ``moe`` (``W_router`` and, under ``experts.{i}.``, each
expert's own), ``hnsw_local_global`` (``w_gate``, ``b_gate``) and ``fused_mixed_curvature``
(``head_weights``, the per-head mixing of the three geometries). :func:`read_weights` turns a
source into named NumPy arrays; a key map renames (and, where the original stores ``y = x Wᵀ`` or
packs several matrices into one, transposes and splits) the original's keys into those names.

Key maps (``key_map=``):

* ``None`` — the source already uses the mechanism's names (what :meth:`Mechanism.state_dict` gives).
* ``"torch_mha"`` — ``torch.nn.MultiheadAttention``: ``in_proj_weight (3E, E)`` and ``in_proj_bias``
  (or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when ``kdim``/``vdim`` differ),
  ``out_proj.weight``, ``out_proj.bias``. ``bias_k``/``bias_v`` (``add_bias_kv``) are refused.
* ``"hf_bert"`` — a Hugging Face BERT-style ``BertAttention`` module: ``self.query``,
  ``self.key``, ``self.value`` and ``output.dense`` (``weight (out, in)``, ``bias``). Its
  ``output.LayerNorm`` and the residual sum belong to the transformer layer, not to attention: they
  are read past, not applied.

* ``"pyg"`` — PyTorch Geometric's ``GATv2Conv`` (``lin_l`` the source/key and value projection,
  ``lin_r`` the destination/query one, ``att (1, H, C)``) or ``GATConv`` (``lin``, or ``lin_src`` and
  ``lin_dst``; ``att_src``, ``att_dst``, ``att_edge``), each with an optional ``lin_edge`` and output
  ``bias``; for :class:`~workbench.mechanisms.edge_featured.EdgeFeatured` (``variant`` ``"gatv2"`` or
  ``"gatv1"``). The values are the source projection, as in PyG (``W_v = W``, ``b_v = b``).
  ``residual=True`` (``res``) is refused.

``prefix`` selects the keys of one module in a larger state_dict (e.g.
``"encoder.layer.0.attention."``); keys outside it are not read. Within the map every key is
accounted for: a missing, unknown or mis-shaped one raises an error that names it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np

from workbench.errors import ConfigurationError, DataError, ShapeError


def _to_numpy(value, key: str) -> np.ndarray:
    """A tensor (PyTorch, without importing it) or array-like as a finite float NumPy array."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if hasattr(value, "float") and str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()  # NumPy has no bfloat16
        value = value.numpy()
    try:
        a = np.asarray(value)
    except Exception as exc:
        raise DataError(f"{key}: not an array ({type(value).__name__}: {exc})") from None
    if a.dtype.kind not in "fiu":
        raise DataError(f"{key}: expected a numeric array, got dtype {a.dtype}")
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise DataError(f"{key}: holds NaN or infinity")
    return a


def read_weights(source, *, max_bytes: int | None = None) -> dict[str, np.ndarray]:
    """Named arrays from ``source``: a mapping of arrays or tensors (a PyTorch ``state_dict``), or
    the path of an ``.npz`` or ``.safetensors`` file (bounded, never unpickled; see
    :func:`workbench.data.loaders.load_arrays`)."""
    if isinstance(source, (str, os.PathLike)):
        from workbench.data.loaders import load_arrays

        raw = load_arrays(source, max_bytes=max_bytes)
    elif isinstance(source, Mapping):
        raw = dict(source)
    else:
        raise DataError(f"source: expected a dict of arrays, a state_dict or a .npz/.safetensors path, "
                        f"got {type(source).__name__}")
    out = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise DataError(f"source: keys must be strings, got {key!r}")
        out[key] = _to_numpy(value, key)
    if not out:
        raise DataError("source: holds no arrays")
    return out


# -- key maps ---------------------------------------------------------------------------------------

def _take(raw: dict, key: str, ndim: int, used: set) -> np.ndarray:
    if key not in raw:
        raise ShapeError(f"{key}: missing from the source (keys: {sorted(raw)})")
    a = raw[key]
    if a.ndim != ndim:
        raise ShapeError(f"{key}: expected a {ndim}-D array, got shape {a.shape}")
    used.add(key)
    return a


def _linear(raw: dict, prefix: str, name: str, out: dict, used: set, bias_required: bool = False) -> None:
    """``prefix.weight (out, in)`` → ``W_name = weightᵀ``; ``prefix.bias`` → ``b_name``."""
    w = _take(raw, f"{prefix}.weight", 2, used)
    out[f"W_{name}"] = w.T
    if f"{prefix}.bias" in raw or bias_required:
        out[f"b_{name}"] = _take(raw, f"{prefix}.bias", 1, used)


def _torch_mha(raw: dict) -> tuple[dict, set]:
    out, used = {}, set()
    for bad in ("bias_k", "bias_v"):
        if bad in raw:
            raise ConfigurationError(f"{bad}: add_bias_kv (an extra learned key and value) is not supported")
    if "in_proj_weight" in raw:
        w = _take(raw, "in_proj_weight", 2, used)
        if w.shape[0] % 3:
            raise ShapeError(f"in_proj_weight: expected shape (3·E, E), got {w.shape}")
        for name, part in zip("qkv", np.split(w, 3)):
            out[f"W_{name}"] = part.T
    else:
        for name in "qkv":
            out[f"W_{name}"] = _take(raw, f"{name}_proj_weight", 2, used).T
    if "in_proj_bias" in raw:
        b = _take(raw, "in_proj_bias", 1, used)
        if b.shape[0] % 3:
            raise ShapeError(f"in_proj_bias: expected shape (3·E,), got {b.shape}")
        for name, part in zip("qkv", np.split(b, 3)):
            out[f"b_{name}"] = part
    _linear(raw, "out_proj", "o", out, used)
    return out, used


def _hf_bert(raw: dict) -> tuple[dict, set]:
    out, used = {}, set()
    for src, name in (("self.query", "q"), ("self.key", "k"), ("self.value", "v"), ("output.dense", "o")):
        _linear(raw, src, name, out, used)
    used |= {k for k in raw if k.startswith("output.LayerNorm.")}  # the layer's, not attention's
    return out, used


def _att(raw: dict, key: str, used: set) -> np.ndarray:
    """PyG's ``(1, H, C)`` attention vector as ``(H, C)``."""
    a = _take(raw, key, 3, used)
    if a.shape[0] != 1:
        raise ShapeError(f"{key}: expected shape (1, H, C), got {a.shape}")
    return a[0]


def _pyg_source(raw: dict, prefix: str, out: dict, used: set) -> None:
    """The source projection: keys ``W``/``b`` and, as PyG sends it as the message, values ``W_v``/``b_v``."""
    part: dict = {}
    _linear(raw, prefix, "s", part, used)
    out["W"] = out["W_v"] = part["W_s"]
    if "b_s" in part:
        out["b"] = out["b_v"] = part["b_s"]


def _pyg(raw: dict) -> tuple[dict, set]:
    out, used = {}, set()
    if "res.weight" in raw:
        raise ConfigurationError("res.weight: residual=True (a skip projection added to the output) is not supported")
    if "att" in raw:  # GATv2Conv
        _pyg_source(raw, "lin_l", out, used)
        _linear(raw, "lin_r", "q", out, used)
        out["a"] = _att(raw, "att", used)
    elif "att_src" in raw:  # GATConv
        _pyg_source(raw, "lin" if "lin.weight" in raw else "lin_src", out, used)
        if "lin.weight" not in raw:
            _linear(raw, "lin_dst", "q", out, used)
        out["a_k"], out["a_q"] = _att(raw, "att_src", used), _att(raw, "att_dst", used)
        if "att_edge" in raw:
            out["a_e"] = _att(raw, "att_edge", used)
    else:
        raise ShapeError("att: missing; a PyG GATv2Conv state_dict has 'att', a GATConv one 'att_src' and 'att_dst' "
                         f"(keys: {sorted(raw)})")
    if "lin_edge.weight" in raw:
        out["W_e"] = _take(raw, "lin_edge.weight", 2, used).T
    if "bias" in raw:
        out["b_o"] = _take(raw, "bias", 1, used)
    return out, used


#: ``name → function(raw) → (weights by the mechanism's names, keys read)``.
KEY_MAPS: dict[str, Callable] = {"torch_mha": _torch_mha, "hf_bert": _hf_bert, "pyg": _pyg}


def map_keys(raw: dict, key_map: str | None, prefix: str = "") -> dict[str, np.ndarray]:
    """``raw`` renamed by ``key_map`` (see the module docstring), keys under ``prefix`` only."""
    if not isinstance(prefix, str):
        raise ConfigurationError(f"prefix: expected a string, got {type(prefix).__name__}")
    if prefix:
        raw = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        if not raw:
            raise ShapeError(f"prefix: no key of the source starts with {prefix!r}")
    if key_map is None:
        return dict(raw)
    if key_map not in KEY_MAPS:
        raise ConfigurationError(f"key_map: expected None or one of {sorted(KEY_MAPS)}, got {key_map!r}")
    out, used = KEY_MAPS[key_map](raw)
    extra = sorted(set(raw) - used)
    if extra:
        raise ShapeError(f"{extra[0]}: not a key of the {key_map!r} map (unread keys: {extra}); pass prefix= "
                         "to select one module of a larger state_dict")
    return out


def check_names(weights: dict, required: tuple, optional: tuple, owner: str) -> None:
    """Every required name present, nothing outside ``required + optional`` (errors name the key)."""
    missing = [n for n in required if n not in weights]
    if missing:
        raise ShapeError(f"{missing[0]}: missing; {owner} needs {list(required)} (optional: {list(optional)})")
    extra = sorted(set(weights) - set(required) - set(optional))
    if extra:
        raise ShapeError(f"{extra[0]}: not a weight of {owner} (it has {list(required + optional)})")


def check_shape(weights: dict, name: str, shape: tuple) -> None:
    """``weights[name].shape == shape`` (``None`` entries match any size)."""
    got = weights[name].shape
    if len(got) != len(shape) or any(s is not None and g != s for g, s in zip(got, shape)):
        want = "(" + ", ".join("·" if s is None else str(s) for s in shape) + ")"
        raise ShapeError(f"{name}: expected shape {want}, got {got}")


__all__ = ["KEY_MAPS", "read_weights", "map_keys", "check_names", "check_shape"]
