"""Any registered mechanism on a trained head's own Q/K/V, measured against the head.

:func:`compare_head` runs mechanism ``name`` on ``(q, k, v)`` of one head of a :class:`ModelRun`
(at the model's own scale ``1/√dh`` where the mechanism has a ``scale``, or calibrated on the
head's keys) and gives :func:`workbench.compare.diagnostics` against the model's own head:
``output_distance = ‖O − O_model‖_F / ‖O_model‖_F`` and ``top_k_overlap`` (mean over queries of
``|top_k(W_i) ∩ top_k(A_i)| / k``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench import compare
from workbench.errors import ConfigurationError
from workbench.models.transformer import ModelRun


@dataclass
class HeadComparison:
    """One mechanism on one head: ``result`` (:class:`workbench.compare.RunResult`, rows as the
    model's), ``model`` (the head's own weights and context as a RunResult) and ``diagnostics``."""

    layer: int
    head: int
    result: compare.RunResult
    model: compare.RunResult
    diagnostics: dict


def model_head(run: ModelRun, layer: int, head: int, *, with_weights: bool = True) -> compare.RunResult:
    """The model's own head as a :class:`~workbench.compare.RunResult` (weights only when
    ``L² ≤ MAX_DENSE`` and ``with_weights``)."""
    L = run.num_tokens
    w = run.attention(layer, head) if with_weights and L * L <= compare.MAX_DENSE else None
    return compare.RunResult(name=f"{run.model} L{layer} H{head}", params={}, weights=w,
                             output=run.context(layer, head), backend="numpy")


def head_params(name: str, params: dict | None, run: ModelRun, layer: int, head: int, *,
                calibrated: bool = False) -> dict:
    """``params`` for ``name`` on this head: calibrated on the head's keys (``calibrated``), else the
    model's own scale ``1/√dh`` where the mechanism has a ``scale`` parameter and none is given."""
    import workbench

    params = dict(params or {})
    info = workbench.registry[name]
    if calibrated:
        _, k, _ = run.head_inputs(layer, head)
        mech = workbench.calibrate(name, k, **params)
        return mech.nondefault_params()
    if "scale" in info.parameters and params.get("scale") is None:
        params["scale"] = float(run.scale)
    return params


def compare_head(run: ModelRun, layer: int, head: int, name: str, params: dict | None = None, *,
                 calibrated: bool = False, top_k: int = 8, want_weights: bool = True,
                 reference: compare.RunResult | None = None) -> HeadComparison:
    """Mechanism ``name`` on the head's own ``q, k, v`` against the head (see the module docstring).
    Errors of the mechanism come back in ``result.error``, as :func:`workbench.compare.run`.
    ``reference``: the head's :func:`model_head`, when several mechanisms are compared with it."""
    import workbench

    if name not in workbench.registry:
        raise ConfigurationError(f"name: expected a registered mechanism, got {name!r}")
    q, k, v = run.head_inputs(layer, head)
    p = head_params(name, params, run, layer, head, calibrated=calibrated)
    res = compare.run(name, p, q, k, v, want_weights=want_weights)
    ref = model_head(run, layer, head, with_weights=want_weights) if reference is None else reference
    return HeadComparison(int(layer), int(head), res, ref, compare.diagnostics(res, ref, top_k=top_k))


def top_k_overlap(weights: np.ndarray, reference: np.ndarray, k: int = 8) -> float:
    """Mean over rows of ``|top_k(w_i) ∩ top_k(r_i)| / k`` (:func:`workbench.compare.diagnostics`)."""
    a = compare.RunResult("a", {}, weights=np.asarray(weights))
    b = compare.RunResult("b", {}, weights=np.asarray(reference))
    return compare.diagnostics(a, b, top_k=k)["top_k_overlap"]


__all__ = ["HeadComparison", "compare_head", "head_params", "model_head", "top_k_overlap"]
